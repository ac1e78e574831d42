"""training.ml must run on a GPU box without Django: importing all of it loads no django module."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = """
import importlib, pkgutil, sys
import training.ml
names = [m.name for m in pkgutil.walk_packages(training.ml.__path__, "training.ml.")]
for name in names:
    importlib.import_module(name)
leaked = sorted(m for m in sys.modules if m.split(".")[0] in {"django", "labeling", "config", "rest_framework", "celery"})
print(len(names), leaked)
assert "django" not in sys.modules, leaked
assert not leaked, leaked
"""


def test_importing_every_module_loads_no_django():
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(Path.home())},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    count = int(proc.stdout.split()[0])
    assert count >= 15
