"""The README stays a first screen, and every link in it and in the changelog leads somewhere.

MkDocs checks the links between docs/ pages (`make test` builds them with --strict); these are the two files
outside docs/ that point into it.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def relative_links(path: Path) -> list[str]:
    return [target for target in LINK.findall(path.read_text()) if "://" not in target]


def test_the_readme_is_short_and_has_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert text.count("\n") <= 250
    assert "make run" in text and "make test" in text


def test_every_relative_link_of_the_readme_and_changelog_exists():
    for name in ("README.md", "CHANGELOG.md"):
        targets = relative_links(ROOT / name)
        assert targets, name
        missing = [t for t in targets if not (ROOT / t).exists()]
        assert not missing, f"{name} links to missing files: {missing}"


def test_every_docs_page_is_in_the_mkdocs_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    assert [p for p in pages if p not in nav] == []
