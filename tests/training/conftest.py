import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
ROOT = Path(__file__).resolve().parents[2]

# Small enough for a CPU: a few optimizer steps per stage.
FAST_STAGES = {
    "sft": {
        "max_steps": 4,
        "per_device_train_batch_size": 2,
        "logging_steps": 1,
        "save_steps": 2,
        "progress_bar": False,
    },
    "rm": {
        "max_steps": 3,
        "per_device_train_batch_size": 2,
        "logging_steps": 1,
        "progress_bar": False,
        "learning_rate": 1e-4,
    },
    "ppo": {
        "steps": 2,
        "batch_size": 4,
        "mini_batch_size": 2,
        "micro_batch_size": 2,
        "max_new_tokens": 8,
        "save_steps": 1,
        "progress_bar": False,
    },
    "dpo": {"max_steps": 3, "per_device_train_batch_size": 2, "logging_steps": 1, "progress_bar": False},
    "generate": {"max_new_tokens": 12, "progress_bar": False},
}


def wait_for(predicate, *, what: str, limit: float = 600, every: float = 0.5):
    """Poll until predicate() is truthy. The limit only guards against a hang; it measures nothing."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"gave up waiting for {what}")


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory) -> str:
    from training.ml.tiny import build_tiny_model

    return str(build_tiny_model(tmp_path_factory.mktemp("tiny-base")))


@pytest.fixture
def media(settings, tmp_path, tiny_base):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.BASE_MODEL = tiny_base
    yield Path(settings.MEDIA_ROOT)
    kill_left_running(Path(settings.MEDIA_ROOT))


def kill_left_running(media: Path) -> list[int]:
    """Kill the launched training processes (accelerate or a SLURM job's, and their ranks) that read a
    stage config under `media`: a test that failed while following one leaves it running, and it would
    train beside the next test's. Returns their pids."""
    import psutil

    inside = f"{media}{os.sep}"
    found = [
        proc
        for proc in psutil.process_iter(["cmdline"])
        if any(arg.startswith(inside) and arg.endswith("stage.yaml") for arg in proc.info["cmdline"] or [])
    ]
    for proc in found:
        print(f"killing {proc.pid}, left running by this test: {' '.join(proc.info['cmdline'])}")
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(found, timeout=10)
    return [proc.pid for proc in found]


@pytest.fixture
def api(researcher):
    """The REST API as a signed-in researcher."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(researcher)
    return client


@pytest.fixture
def demo_data(db):
    """The demo's prompts, demonstrations and a batch of rankings: enough to train a round on."""
    call_command("load_demo", stdout=io.StringIO())


@pytest.fixture
def inline_tasks(settings):
    settings.CELERY_BROKER_URL = ""
    settings.TASKS_INLINE = True


class WorkerProcess:
    """A real `celery -A config worker` process, on the test database and a Redis test db."""

    def __init__(self, media: Path, base_model: str, stale_seconds: int) -> None:
        self.log = media.parent / "worker.log"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.test_settings",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{connection.settings_dict['NAME']}",
            "CELERY_BROKER_URL": REDIS_URL,
            "MEDIA_ROOT": str(media),
            "BASE_MODEL": base_model,
            "TRAINING_HEARTBEAT_SECONDS": "1",
            "TRAINING_PROGRESS_SECONDS": "0.5",
            "TRAINING_STALE_SECONDS": str(stale_seconds),
            "PYTHONUNBUFFERED": "1",
        }
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            "default,gpu",
            "--pool",
            "solo",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill9(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill9()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


@pytest.fixture
def worker(settings, media, tiny_base):
    """Start a real Celery worker; the test process sends to the same Redis."""
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    settings.CELERY_BROKER_URL = REDIS_URL
    settings.TASKS_INLINE = False
    settings.TRAINING_STALE_SECONDS = 4
    process = WorkerProcess(media, tiny_base, stale_seconds=4)
    process.start()
    yield process
    process.stop()
    print(process.tail())
