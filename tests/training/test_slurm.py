"""TRAINING_LAUNCHER=slurm on a REAL one-node SLURM cluster (Debian's slurm-wlm: slurmctld + slurmd on
localhost, started by the test, tests/training/slurm_cluster.py) and a REAL Celery worker: the worker
submits each stage with sbatch, the job runs `accelerate launch` with two CPU processes on the node, and
the worker follows it through the shared output folder and squeue / sacct / scontrol; a cancel reaches
the job. Skipped, with the reason, where SLURM is not installed (`make slurm`).
"""

from pathlib import Path

import pytest

from training.ml.checkpoints import last_checkpoint
from training.models import ModelVersion, RunStatus, TrainingRun
from training.services import stages
from training.services.launch import EXIT_CANCELLED
from training.services.slurm import SlurmError, SlurmLaunch

from .conftest import FAST_STAGES, REDIS_URL, WorkerProcess, wait_for
from .slurm_cluster import NODE, PARTITION, SlurmCluster, missing
from .test_launch import LONG_SFT, start_sft, until_finished, until_progress

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.skipif(bool(missing()), reason=missing() or "SLURM is here"),
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def slurm_settings(settings, cluster, monkeypatch):
    """This process calls the cluster's clients too (the direct test, and the checks)."""
    import redis

    monkeypatch.setenv("SLURM_CONF", str(cluster.conf))
    settings.TRAINING_SLURM_PARTITION = PARTITION
    yield settings
    redis.Redis.from_url(REDIS_URL).flushdb()  # the tasks of runs that only this process launched


@pytest.fixture
def slurm_worker(slurm_settings, cluster, media, tiny_base):
    """A real worker with TRAINING_LAUNCHER=slurm, pointed at the test's cluster."""
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    slurm_settings.CELERY_BROKER_URL = REDIS_URL
    slurm_settings.TASKS_INLINE = False
    process = WorkerProcess(media, tiny_base, stale_seconds=30)
    process.env.update(
        TRAINING_LAUNCHER="slurm", SLURM_CONF=str(cluster.conf), TRAINING_SLURM_PARTITION=PARTITION
    )
    process.start()
    yield process
    process.stop()
    print(process.tail())
    print(cluster.logs())


def job_id_of(run_id: int) -> str:
    """The SLURM job of a run's launch, from the launch folder the worker writes it into."""
    output_dir = TrainingRun.objects.get(pk=run_id).config["output_dir"]
    return wait_for(
        lambda: next(iter(Path(output_dir).glob(f"launch-run-{run_id}/slurm-job-id")), None),
        what=f"run {run_id}'s job id",
    ).read_text()


def job_state(cluster: SlurmCluster, job_id: str) -> str:
    """What slurmctld says of the job (it keeps ended jobs for MinJobAge)."""
    text = cluster.run("scontrol", "show", "job", "-o", job_id)
    return dict(field.split("=", 1) for field in text.split() if "=" in field).get("JobState", "")


def test_a_slurm_run_reports_progress_and_log_tail_and_registers_its_model(
    slurm_worker, cluster, demo_data, api
):
    run_id = start_sft(api, FAST_STAGES["sft"])
    run = until_finished(api, run_id, slurm_worker)
    assert run["status"] == RunStatus.SUCCEEDED, run["error"] + slurm_worker.tail() + cluster.logs()
    assert (run["progress_step"], run["progress_total"]) == (4, 4)
    job_id = job_id_of(run_id)
    job_log = (Path(run["config"]["output_dir"]) / f"launch-run-{run_id}" / "output.log").read_text()
    assert (
        f"slurm job {job_id}: 1 node(s) ({NODE}), rendezvous {NODE}:" in job_log
    )  # the job script, on the node
    assert "step 4/4" in run["log_tail"]  # the main rank's progress, through the shared progress file
    assert '"steps": 4' in run["log_tail"]  # the processes' output: the CLI's metrics line
    assert f"slurm job {job_id}: COMPLETED, exit code 0:0" in run["log_tail"]
    assert job_state(cluster, job_id) == "COMPLETED"
    model = ModelVersion.objects.get(pk=run["output_model"])
    assert model.kind == "sft" and model.metrics["steps"] == 4
    checkpoint = last_checkpoint(model.checkpoint)  # both ranks trained, on the node
    assert (checkpoint / "rng_state_0.pth").exists() and (checkpoint / "rng_state_1.pth").exists()


def test_a_cancel_from_the_api_reaches_the_slurm_job(slurm_worker, cluster, demo_data, api):
    run_id = start_sft(api, LONG_SFT)
    until_progress(api, run_id, slurm_worker)
    job_id = job_id_of(run_id)
    assert cluster.run("squeue", "-h", "-j", job_id, "-o", "%T") == "RUNNING"
    assert api.post(f"/api/v1/training-runs/{run_id}/cancel/").status_code == 200
    run = until_finished(api, run_id, slurm_worker)
    assert run["status"] == RunStatus.CANCELLED, run["error"]
    assert "cancelled" in run["log_tail"]  # the ranks saw the STOP file the worker wrote
    assert cluster.run("squeue", "-h", "-j", job_id, "-o", "%T") == ""  # the job is over
    assert job_state(cluster, job_id) in ("COMPLETED", "FAILED")  # it ended itself, within the grace
    checkpoint = last_checkpoint(TrainingRun.objects.get(pk=run_id).config["output_dir"])
    assert (checkpoint / "rng_state_0.pth").exists() and (checkpoint / "rng_state_1.pth").exists()
    assert not ModelVersion.objects.filter(kind="sft").exists()


def test_past_the_grace_a_cancel_scancels_the_job(slurm_settings, cluster, media, demo_data, api):
    """No worker: this process launches the queued run's stage itself, with no grace, so the cancel goes
    straight to scancel --signal=TERM and scancel; SLURM then records the job as CANCELLED."""
    slurm_settings.CELERY_BROKER_URL = REDIS_URL  # the run's task waits in the broker; nobody takes it
    run = TrainingRun.objects.get(pk=start_sft(api, LONG_SFT))
    kind, config = stages.build_config(run)
    launch = SlurmLaunch(run=run, stage_kind=kind, stage_config=config, grace_seconds=0, kill_after_seconds=0)
    launch.start()
    wait_for(lambda: launch.files.progress.exists(), what=f"job {launch.job_id} to train\n{cluster.logs()}")
    launch.cancel()
    (code,) = wait_for(lambda: (c := launch.poll()) is not None and (c,), what=f"job {launch.job_id} to end")
    assert code == EXIT_CANCELLED
    assert job_state(cluster, launch.job_id) == "CANCELLED"
    assert f"slurm job {launch.job_id}: CANCELLED" in launch.files.log.read_text()


def test_a_job_sbatch_refuses_fails_the_run_with_sbatchs_reason(
    slurm_settings, cluster, media, demo_data, api
):
    slurm_settings.CELERY_BROKER_URL = REDIS_URL
    slurm_settings.TRAINING_SLURM_PARTITION = "no-such-partition"
    run = TrainingRun.objects.get(pk=start_sft(api, FAST_STAGES["sft"]))
    kind, config = stages.build_config(run)
    launch = SlurmLaunch(run=run, stage_kind=kind, stage_config=config)
    with pytest.raises(SlurmError, match="(?i)sbatch refused the job: .*invalid partition"):
        launch.start()
    assert "#SBATCH --partition=no-such-partition" in launch.script.read_text()
    assert cluster.run("squeue", "-h") == ""  # nothing was queued
