"""The web app, the default-queue worker and beat run without the learning side installed.

pyproject's `train` extra (torch, transformers, TRL, datasets, accelerate, tokenizers) goes only where training
runs: GPU workers and the local demo. This starts a fresh interpreter in which importing any of them fails,
as in the slim image, and checks that Django starts, that every URL's view and every Celery task module
imports, and that pages and the API answer.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TRAIN_EXTRA = ("torch", "transformers", "trl", "datasets", "accelerate", "tokenizers", "tqdm")

SCRIPT = textwrap.dedent(
    """
    import importlib.abc, json, sys

    BLOCKED = set(sys.argv[1].split(","))

    class NotInstalled(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r} (not installed on the web side)")
            return None

    sys.meta_path.insert(0, NotInstalled())
    import django
    django.setup()
    from django.core.management import call_command
    call_command("check", fail_level="ERROR")

    from django.urls import URLPattern, URLResolver, get_resolver

    def walk(patterns):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns)
            elif isinstance(p, URLPattern):
                yield p.callback

    views = list(walk(get_resolver().url_patterns))
    from config.celery import app
    app.loader.import_default_modules()
    tasks = sorted(name for name in app.tasks if not name.startswith("celery."))

    from django.test import Client
    from django.test.utils import setup_test_environment
    setup_test_environment()
    client = Client()
    statuses = [client.get(path).status_code for path in ("/accounts/login/", "/api/v1/schema/", "/training/")]
    from core.errors import ServiceError
    from training.services.registry import base_model_path
    try:
        refused = "built " + base_model_path()
    except ServiceError as exc:
        refused = exc.code
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    print(json.dumps({"views": len(views), "tasks": tasks, "statuses": statuses, "loaded": loaded, "base_model": refused}))
    """
)


def test_django_the_views_and_the_task_modules_load_without_the_train_extra(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "SECRET_KEY": "test-only-secret",
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "0",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "ALLOWED_HOSTS": "testserver",
        "MEDIA_ROOT": str(tmp_path / "media"),
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, ",".join(TRAIN_EXTRA)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["views"] > 50 and "training.tasks.reap_stale_runs" in seen["tasks"], seen
    assert seen["statuses"] == [200, 401, 302] and seen["loaded"] == [], seen
    assert seen["base_model"] == "base_model_missing", seen  # a clear error, not a ModuleNotFoundError


def test_only_the_gpu_workers_image_installs_the_train_extra():
    import yaml

    app, train = (ROOT / "Dockerfile").read_text(), (ROOT / "Dockerfile.train").read_text()
    installs = lambda text: " ".join(line for line in text.splitlines() if line.startswith("RUN"))  # noqa: E731
    assert "torch" not in installs(app) and "[train]" not in installs(app)
    assert "torch==" in installs(train) and '".[train]"' in installs(train)
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert services["gpu-worker"]["build"]["dockerfile"] == "Dockerfile.train"
    for name in ("web", "worker", "beat"):
        assert services[name]["build"] == "." and services[name]["image"] == "loopwork:latest", name
