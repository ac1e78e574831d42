"""The learning side's data: the model registry and training runs."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from .round_state import RoundState

User = settings.AUTH_USER_MODEL


class ModelKind(models.TextChoices):
    BASE = "base", "Base"
    SFT = "sft", "SFT"
    RM = "rm", "Reward model"
    PPO = "ppo", "PPO"
    DPO = "dpo", "DPO"


class ModelVersion(models.Model):
    """A trained (or base) model with its lineage back to the labels it learned from."""

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=10, choices=ModelKind.choices)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    snapshots = models.ManyToManyField(
        "labeling.DatasetSnapshot", through="ModelVersionSnapshot", blank=True, related_name="model_versions"
    )
    checkpoint = models.CharField(max_length=500, help_text="Local path or hub id of the model folder.")
    metrics = models.JSONField(default=dict, blank=True)
    config = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=ModelKind.values), name="modelversion_kind_valid"),
            models.CheckConstraint(
                condition=Q(kind="base") | Q(parent__isnull=False), name="modelversion_trained_has_parent"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class ModelVersionSnapshot(models.Model):
    """A snapshot a model trained on. PROTECT: a snapshot a model points at cannot be deleted."""

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE)
    snapshot = models.ForeignKey("labeling.DatasetSnapshot", on_delete=models.PROTECT)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model_version", "snapshot"], name="mvs_unique")]


class RunKind(models.TextChoices):
    SFT = "sft", "SFT"
    RM = "rm", "Reward model"
    PPO = "ppo", "PPO"
    DPO = "dpo", "DPO"
    GENERATE = "generate", "Generate"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class TrainingRun(models.Model):
    Kind = RunKind

    Status = RunStatus

    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    config = models.JSONField(default=dict, blank=True)
    base_model = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="runs_started_from")
    # For PPO: the reward model it optimises against.
    reward_model = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="runs_scored_by"
    )
    snapshots = models.ManyToManyField("labeling.DatasetSnapshot", blank=True, related_name="training_runs")
    round = models.ForeignKey("Round", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    output_model = models.OneToOneField(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="training_run"
    )
    progress_step = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict, blank=True)
    metrics_history = models.JSONField(default=list, blank=True)
    log_tail = models.TextField(blank=True)
    error = models.TextField(blank=True)
    worker_task_id = models.CharField(max_length=200, blank=True)
    worker = models.CharField(
        max_length=300, blank=True, help_text="host:pid of the process running it, so the reaper can ask."
    )
    cancel_requested = models.BooleanField(default=False)
    launch_config = models.CharField(
        max_length=40,
        blank=True,
        help_text="The shipped accelerate config it trains with when the worker launches stages "
        "(training/ml/launch/).",
    )
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(
        null=True, blank=True, help_text="When its task was last sent; a run queued too long is sent again."
    )
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=RunKind.values), name="trainingrun_kind_valid"),
            models.CheckConstraint(condition=Q(status__in=RunStatus.values), name="trainingrun_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} run {self.pk} ({self.status})"


class RoundStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Round(models.Model):
    """One turn of the loop: export -> SFT -> RM -> PPO (or DPO) -> generate -> new ranking batch.

    `state` records what each finished step produced (snapshot, run and model ids), so a failed
    round retries from the step that failed without redoing the ones before it. Its shape is
    RoundState (read it as `round_state`); training/services/rounds.py is the one writer.
    """

    Status = RoundStatus

    number = models.PositiveIntegerField()
    method = models.CharField(max_length=3, choices=[("ppo", "PPO"), ("dpo", "DPO")], default="ppo")
    status = models.CharField(max_length=10, choices=RoundStatus.choices, default=RoundStatus.RUNNING)
    step = models.CharField(
        max_length=20, blank=True, help_text="The step running now, or the one that failed."
    )
    config = models.JSONField(default=dict, blank=True)
    launch_config = models.CharField(
        max_length=40,
        blank=True,
        help_text="The accelerate config its training runs use (training/ml/launch/).",
    )
    state = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    batch = models.ForeignKey(
        "labeling.Batch", null=True, blank=True, on_delete=models.SET_NULL, related_name="created_by_round"
    )
    worker = models.CharField(
        max_length=300,
        blank=True,
        help_text="host:pid of the process that runs it when there is no broker, so a next start can tell it is gone.",
    )
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(status__in=RoundStatus.values), name="round_status_valid"),
            # A schedule (or a double click) never starts a second copy of a round that is still going.
            models.UniqueConstraint(
                fields=["status"], condition=Q(status="running"), name="one_running_round"
            ),
        ]

    def __str__(self) -> str:
        return f"Round {self.number} ({self.method}, {self.status})"

    @property
    def round_state(self) -> RoundState:
        """`state`, typed (training/round_state.py)."""
        return RoundState.from_json(self.state)
