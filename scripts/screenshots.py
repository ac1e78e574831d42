"""Refresh the screenshots of the main pages in docs/screenshots/ (`make screenshots`).

Starts the product as `make run` does (SQLite, in-process tasks, demo data, one round of the loop) in a
throwaway folder, opens each
page as the role that uses it in Debian's chromium (Playwright, never a browser download), and writes one
PNG a page, light colour scheme, plus the ranking page in dark mode. Pages that a checkout does not have
(a 404) are skipped with a note, so the script runs on older branches too.

    python scripts/screenshots.py [--out docs/screenshots] [--port 8765]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PASSWORDS = {  # labeling/demo.py's demo users (local demo only)
    "labeler": "labeler-demo-pass",
    "admin": "admin-demo-pass",
    "researcher": "researcher-demo-pass",
}
# (file name, user, path or a step that opens the page, caption)
PAGES = [
    ("home-labeler", "labeler", "/", "A labeler's home: the batches with work for them"),
    ("ranking", "labeler", "start:Demo: rank outputs (round 0)", "Ranking K=4 outputs with ties and scores"),
    (
        "history",
        "labeler",
        "/submissions/",
        "A labeler's own submissions, with undo while the window is open",
    ),
    ("batches", "admin", "/manage/batches/", "Batch admins: the batches and their progress"),
    ("people", "admin", "/manage/people/", "Batch admins: onboarding labelers"),
    ("explore", "researcher", "/explore/rankings/", "The data explorer: every label, filtered and searched"),
    ("datasets", "researcher", "/manage/datasets/", "Versioned dataset exports"),
    ("training", "researcher", "/training/", "Training: runs, rounds and the model registry"),
    (
        "round",
        "researcher",
        "/training/rounds/1/",
        "A round: each step with its state, time, and the reward's change",
    ),
    ("run", "researcher", "/training/runs/3/", "A PPO run: progress, charts, log and its config as a table"),
    ("quality", "researcher", "/quality/", "Label quality: agreement, gold and screening"),
]


def _serve(workdir: Path, port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
        "MEDIA_ROOT": str(workdir / "media"),
        "CELERY_BROKER_URL": "",
        "OMP_NUM_THREADS": "1",
        "TRAINING_ROUND_STAGE_CONFIG": '{"ppo": {"steps": 20, "batch_size": 16}}',  # as `make run`
    }
    # One round of the loop first (tens of seconds), so the round and run pages have something to show.
    for command in (["migrate", "--noinput"], ["load_demo"], ["start_round", "--method", "ppo", "--wait"]):
        subprocess.run(
            [sys.executable, "manage.py", *command], cwd=REPO, env=env, check=True, capture_output=True
        )
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(120):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=2)
            return server
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit(f"the server did not answer on port {port}")


def _open(page, base: str, target: str) -> bool:
    """Go to a path, or press a batch's start button on the home page ('start:<batch name>')."""
    if target.startswith("start:"):
        page.goto(base + "/")
        card = page.locator("li").filter(has_text=target.removeprefix("start:"))
        card.locator("form[action*='/start/'] button, a.button").first.click()
        page.wait_for_load_state("networkidle")
        return True
    response = page.goto(base + target)
    return response is not None and response.status < 400


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "docs" / "screenshots"))
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        server = _serve(Path(tmp), args.port)
        base = f"http://127.0.0.1:{args.port}"
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM,
                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
                )
                for scheme in ("light", "dark"):
                    for name, user, target, caption in PAGES:
                        if scheme == "dark" and name != "ranking":
                            continue
                        context = browser.new_context(
                            viewport={"width": 1280, "height": 800}, color_scheme=scheme
                        )
                        page = context.new_page()
                        page.goto(base + "/accounts/login/")
                        page.fill("input[name=username]", user)
                        page.fill("input[name=password]", PASSWORDS[user])
                        page.click("button[type=submit], input[type=submit]")
                        page.wait_for_load_state("networkidle")
                        if _open(page, base, target):
                            file = out / (f"{name}-dark.png" if scheme == "dark" else f"{name}.png")
                            page.screenshot(path=str(file), full_page=False)
                            print(
                                f"{file.relative_to(REPO) if file.is_relative_to(REPO) else file}: {caption}"
                            )
                        else:
                            print(f"skipped {name}: {target} is not served by this checkout")
                        context.close()
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
