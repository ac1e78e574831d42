"""Postgres goes away in the middle of a real training run: the run never stops for it.

A worker process trains a small SFT run on a throwaway cluster; while it trains, the cluster is stopped
for several seconds and started again. Progress, heartbeat and cancel checks fail during the outage and
are tried again; training goes on; the outcome and the registered model are written once the database
is back. Before, the first failed progress write raised into the training loop and the run died.
"""

import json
import os
import subprocess
import sys
import time

import psycopg
import pytest

from tests.training.conftest import wait_for

from .servers import ROOT, run

pytestmark = pytest.mark.slow

OUTAGE = 8  # seconds without a database, in the middle of training

TRAIN = """
import json, logging
from django.conf import settings
from django.core.management import call_command
from labeling.services.exports import snapshot_create
from training.services.registry import base_model_get_or_create
from training.services.runs import run_start

logging.basicConfig(level=logging.WARNING)
call_command("load_demo")
snapshot = snapshot_create(kind="sft", filters={})
settings.TASKS_INLINE = True  # run_execute here, in this process: the worker of this test
config = {"max_steps": 400, "per_device_train_batch_size": 2, "logging_steps": 1, "save_steps": 1000,
          "progress_bar": False}
run = run_start(kind="sft", base_model=base_model_get_or_create(), snapshots=[snapshot], config=config)
run.refresh_from_db()
print(json.dumps({"run": run.pk, "status": run.status, "error": run.error[:2000],
                  "model": run.output_model_id}))
"""


def query(cluster, sql: str):
    with psycopg.connect(cluster.dsn(), connect_timeout=2) as conn:
        return conn.execute(sql).fetchone()


def progress_of_the_run(cluster) -> int:
    try:
        row = query(cluster, "SELECT progress_step FROM training_trainingrun WHERE status = 'running'")
    except psycopg.Error:
        return 0
    return row[0] if row else 0


def test_a_run_trains_through_a_database_outage_and_ends_succeeded(cluster, tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": cluster.url,
        "CONN_MAX_AGE": "60",
        "DEBUG": "0",
        "SECRET_KEY": "fault-test-only-secret",
        "SECURE_SSL_REDIRECT": "0",
        "CELERY_BROKER_URL": "",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "TRAINING_HEARTBEAT_SECONDS": "1",
        "TRAINING_PROGRESS_SECONDS": "0.2",
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": "1",
    }
    run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env)
    log = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", TRAIN],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log.open("wb"),
        text=True,
    )
    try:
        wait_for(lambda: progress_of_the_run(cluster) >= 5, what="the run to train a few steps", limit=600)
        cluster.stop("fast")
        time.sleep(OUTAGE)
        assert worker.poll() is None, "the worker stopped during the outage:\n" + log.read_text()[-3000:]
        cluster.start()
        out, _ = worker.communicate(timeout=900)
    finally:
        if worker.poll() is None:
            worker.kill()
    told = log.read_text(errors="replace")
    assert worker.returncode == 0, told[-3000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert result["status"] == "succeeded", result["error"]
    assert result["model"] is not None  # registered once the database was back
    assert "progress failed, retried later" in told or "heartbeat failed, retried later" in told
    step, total = query(
        cluster, f"SELECT progress_step, progress_total FROM training_trainingrun WHERE id = {result['run']}"
    )
    assert step == total == 400
