"""The collection side's data. Rules that must always hold are database constraints."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from .vocab import K_MAX, K_MIN, LIKERT_MAX, LIKERT_MIN, Category, PromptSource, Split

User = settings.AUTH_USER_MODEL


class Prompt(models.Model):
    text = models.TextField()
    category = models.CharField(max_length=20, choices=Category.choices)
    source = models.CharField(max_length=20, choices=PromptSource.choices)
    author = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="prompts")
    # Who the prompt came from (a labeler's username or an API user id): drives caps and splits.
    origin_user = models.CharField(max_length=200, db_index=True)
    split = models.CharField(max_length=5, choices=Split.choices)
    # sha256 of the normalised long prefix: prompts sharing it are duplicates (section 3.2).
    dedup_key = models.CharField(max_length=64, unique=True)
    pii_flag = models.BooleanField(default=False)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["split", "category"], name="prompt_split_category")]
        constraints = [
            models.CheckConstraint(condition=Q(category__in=Category.values), name="prompt_category_valid"),
            models.CheckConstraint(condition=Q(source__in=PromptSource.values), name="prompt_source_valid"),
            models.CheckConstraint(condition=Q(split__in=Split.values), name="prompt_split_valid"),
        ]

    def __str__(self) -> str:
        return f"Prompt {self.pk}: {self.text[:60]}"


class Completion(models.Model):
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="completions")
    text = models.TextField()
    model_version = models.ForeignKey(
        "training.ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="completions"
    )
    # For outputs imported from elsewhere (an API, vLLM, another team): the external model's name.
    source_name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # Target of the composite foreign key that keeps a task's completions on its prompt.
            models.UniqueConstraint(fields=["id", "prompt"], name="completion_id_prompt"),
            models.CheckConstraint(
                condition=Q(model_version__isnull=False) | ~Q(source_name=""), name="completion_has_origin"
            ),
        ]

    def __str__(self) -> str:
        return f"Completion {self.pk} of prompt {self.prompt_id}"


class BatchKind(models.TextChoices):
    PROMPT_WRITING = "prompt_writing", "Prompt writing"
    DEMONSTRATION = "demonstration", "Demonstration"
    RANKING = "ranking", "Ranking"
    EVALUATION = "evaluation", "Evaluation"


class BatchStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    CLOSED = "closed", "Closed"


class Batch(models.Model):
    Kind = BatchKind

    Status = BatchStatus

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=BatchKind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    overlap = models.PositiveSmallIntegerField(default=1, help_text="Labels wanted per task.")
    lease_minutes = models.PositiveIntegerField(default=30)
    instructions = models.TextField(blank=True)
    deadline = models.DateTimeField(null=True, blank=True)
    round_number = models.PositiveIntegerField(default=0)
    model_version = models.ForeignKey(
        "training.ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="batches"
    )
    labelers = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="labeling_batches")
    groups = models.ManyToManyField("auth.Group", blank=True, related_name="labeling_batches")
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    # Label quality (labeling/quality): gold tasks mixed in, and screening by a qualification batch.
    gold_rate = models.FloatField(
        default=0.0, help_text="Share of each labeler's tasks that are gold tasks, 0 to 1."
    )
    is_qualification = models.BooleanField(default=False, help_text="A screening batch: gold tasks only.")
    qualification_threshold = models.FloatField(
        default=0.7,
        help_text="Pass mark of a qualification batch: the gold accuracy (0 to 1) a labeler needs.",
    )
    requires_qualification = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="gated_batches",
        limit_choices_to={"is_qualification": True},
        help_text="Labelers get tasks here only after passing this qualification batch (or an admin's approval).",
    )

    class Meta:
        verbose_name_plural = "batches"
        constraints = [
            models.CheckConstraint(condition=Q(overlap__gte=1), name="batch_overlap_positive"),
            models.CheckConstraint(condition=Q(lease_minutes__gte=1), name="batch_lease_positive"),
            models.CheckConstraint(condition=Q(kind__in=BatchKind.values), name="batch_kind_valid"),
            models.CheckConstraint(condition=Q(status__in=BatchStatus.values), name="batch_status_valid"),
            models.CheckConstraint(
                condition=Q(gold_rate__gte=0, gold_rate__lte=1), name="batch_gold_rate_0_to_1"
            ),
            models.CheckConstraint(
                condition=Q(qualification_threshold__gte=0, qualification_threshold__lte=1),
                name="batch_qualification_threshold_0_to_1",
            ),
            models.CheckConstraint(
                condition=Q(is_qualification=False) | Q(requires_qualification__isnull=True),
                name="batch_qualification_not_gated",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Task(models.Model):
    """One unit of work in a batch. For ranking: a prompt and its K completions (TaskCompletion)."""

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="tasks")
    prompt = models.ForeignKey(Prompt, null=True, blank=True, on_delete=models.PROTECT, related_name="tasks")
    completions = models.ManyToManyField(Completion, through="TaskCompletion", related_name="tasks")
    # Not a field: the completions shown, in order, set by handout.next.completions_shown (a prefetch).
    shown_completions: list["TaskCompletion"]
    k = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Number of completions to rank.")
    created_at = models.DateTimeField(auto_now_add=True)
    # A gold task carries an admin's reference ranking (tiers of completion ids, best first). Labelers are
    # never told: nothing they are shown depends on these two fields.
    is_gold = models.BooleanField(default=False)
    gold_tiers = models.JSONField(null=True, blank=True)
    # Its assignments in short, kept by a Postgres trigger (migrations 0008 and 0010) so the hand-out passes
    # over finished tasks, and tasks full of live leases, without counting their assignments: how many are
    # submitted, how many active, and the earliest lease end of the active ones. First filters only: the
    # hand-out's exact count decides. Nothing keeps them on SQLite (the local demo): 0, 0 and NULL there,
    # which filter nothing out.
    labels_submitted = models.PositiveIntegerField(default=0, editable=False)
    labels_active = models.PositiveIntegerField(default=0, editable=False)
    earliest_lease_end = models.DateTimeField(null=True, editable=False)

    class Meta:
        indexes = [models.Index(fields=["batch", "id"], name="task_batch_id")]
        constraints = [
            models.CheckConstraint(
                condition=Q(k__isnull=True) | Q(k__gte=K_MIN, k__lte=K_MAX), name="task_k_between_2_and_9"
            ),
            models.CheckConstraint(
                condition=Q(k__isnull=True) | Q(prompt__isnull=False), name="task_k_needs_prompt"
            ),
            models.UniqueConstraint(fields=["id", "prompt"], name="task_id_prompt"),
            models.CheckConstraint(
                condition=Q(is_gold=False, gold_tiers__isnull=True)
                | Q(is_gold=True, gold_tiers__isnull=False),
                name="task_gold_has_reference",
            ),
        ]

    def __str__(self) -> str:
        return f"Task {self.pk} of {self.batch_id}"


class TaskCompletion(models.Model):
    """A completion shown in a ranking task. (task, prompt) and (completion, prompt) are composite
    foreign keys on Postgres (migration 0002), so a completion of another prompt cannot be attached."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="task_completions")
    completion = models.ForeignKey(Completion, on_delete=models.PROTECT, related_name="task_completions")
    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="+")
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["task", "completion"], name="taskcompletion_unique"),
            models.UniqueConstraint(fields=["task", "position"], name="taskcompletion_position_unique"),
            models.CheckConstraint(condition=Q(position__lt=K_MAX), name="taskcompletion_at_most_9"),
        ]


class AssignmentStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUBMITTED = "submitted", "Submitted"
    # Submitted, its undo window still open: the submission waits in Assignment.submission and is written
    # as labels (rankings, demonstrations, prompts) only when the window closes (labeling.services.undo).
    # It holds its task like a submitted one (handout.rules) but counts nowhere else.
    PENDING = "pending", "Submitted (undo window open)"
    SKIPPED = "skipped", "Skipped"
    EXPIRED = "expired", "Expired"


class Assignment(models.Model):
    Status = AssignmentStatus

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="assignments")
    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="assignments")
    labeler = models.ForeignKey(User, on_delete=models.CASCADE, related_name="assignments")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    lease_expires_at = models.DateTimeField()
    # Order in which this labeler sees the completions (shuffled once, then remembered).
    display_order = models.JSONField(default=list, blank=True)
    draft = models.JSONField(default=dict, blank=True)
    skip_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The undo window (labeling.services.undo): a pending submission, as its submit service validated it,
    # and when the window closes. The submission is emptied once written as labels; undo_until stays.
    submission = models.JSONField(default=dict, blank=True)
    undo_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["batch", "labeler", "status"], name="assignment_batch_labeler"),
            models.Index(fields=["task", "status"], name="assignment_task_status"),
            models.Index(fields=["labeler", "-finished_at"], name="assignment_labeler_history"),
            models.Index(
                fields=["undo_until"], condition=Q(status="pending"), name="assignment_pending_until"
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["task", "labeler"], name="assignment_one_per_task_labeler"),
            models.CheckConstraint(
                condition=Q(status__in=AssignmentStatus.values), name="assignment_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"Assignment {self.pk}: task {self.task_id} to {self.labeler_id}"


class QualificationStatus(models.TextChoices):
    APPROVED = "approved", "Approved by an admin"
    BLOCKED = "blocked", "Blocked by an admin"


class LabelerQualification(models.Model):
    """An admin's decision on a labeler's screening in a qualification batch. Passing or failing is not
    stored: it is computed from the labeler's gold accuracy (labeling.quality.screening); this row only
    lets a labeler below the pass mark through (approved) or keeps one out (blocked)."""

    Status = QualificationStatus

    labeler = models.ForeignKey(User, on_delete=models.CASCADE, related_name="qualifications")
    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="qualifications")
    status = models.CharField(max_length=10, choices=QualificationStatus.choices)
    gold_accuracy = models.FloatField(
        null=True, blank=True, help_text="The labeler's gold accuracy when decided."
    )
    decided_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["labeler", "batch"], name="qualification_once_per_labeler"),
            models.CheckConstraint(
                condition=Q(status__in=QualificationStatus.values), name="qualification_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.labeler_id} {self.status} in {self.batch_id}"


class Demonstration(models.Model):
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="demonstrations")
    author = models.ForeignKey(User, on_delete=models.PROTECT, related_name="demonstrations")
    assignment = models.OneToOneField(
        Assignment, null=True, blank=True, on_delete=models.SET_NULL, related_name="demonstration"
    )
    text = models.TextField()
    seconds_spent = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Demonstration {self.pk} for prompt {self.prompt_id}"


class Ranking(models.Model):
    """A labeler's submission for a ranking assignment: ordered tiers of completions, ties allowed."""

    assignment = models.OneToOneField(Assignment, on_delete=models.PROTECT, related_name="ranking")
    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="rankings")
    labeler = models.ForeignKey(User, on_delete=models.PROTECT, related_name="rankings")
    # [[completion ids of the best tier], [next tier], ...]
    tiers = models.JSONField()
    all_unusable = models.BooleanField(default=False)
    comment = models.TextField(blank=True)
    seconds_spent = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"Ranking {self.pk} of task {self.task_id}"


class Rating(models.Model):
    """Per-completion judgments inside a ranking: Likert 1-7, tier (0 = best) and the metadata flags."""

    ranking = models.ForeignKey(Ranking, on_delete=models.CASCADE, related_name="ratings")
    completion = models.ForeignKey(Completion, on_delete=models.PROTECT, related_name="ratings")
    tier = models.PositiveSmallIntegerField()
    likert = models.PositiveSmallIntegerField(null=True, blank=True)
    flags = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["ranking", "completion"], name="rating_once_per_completion"),
            models.CheckConstraint(
                condition=Q(likert__isnull=True) | Q(likert__gte=LIKERT_MIN, likert__lte=LIKERT_MAX),
                name="rating_likert_1_to_7",
            ),
        ]


class Comparison(models.Model):
    """One (better, worse) pair implied by a ranking; written in the ranking's transaction."""

    ranking = models.ForeignKey(Ranking, on_delete=models.CASCADE, related_name="comparisons")
    batch = models.ForeignKey(Batch, on_delete=models.PROTECT, related_name="comparisons")
    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="comparisons")
    better = models.ForeignKey(Completion, on_delete=models.PROTECT, related_name="+")
    worse = models.ForeignKey(Completion, on_delete=models.PROTECT, related_name="+")
    labeler = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["batch", "id"], name="comparison_batch_id")]
        constraints = [
            models.CheckConstraint(condition=~Q(better=F("worse")), name="comparison_not_self"),
            models.UniqueConstraint(fields=["ranking", "better", "worse"], name="comparison_unique_pair"),
        ]


class SnapshotKind(models.TextChoices):
    SFT = "sft", "SFT (prompt, completion)"
    RM_PAIRS = "rm_pairs", "RM pairs (prompt, chosen, rejected)"
    RM_RANKINGS = "rm_rankings", "RM rankings (prompt, completions, ranks)"
    PROMPTS = "prompts", "Prompts"
    RATINGS = "ratings", "Ratings (prompt, completion, likert, flags)"


class SnapshotFormat(models.TextChoices):
    """How a snapshot writes its texts: plain strings, or TRL's conversational format (chat messages)."""

    STANDARD = "standard", "Standard (texts as strings)"
    CONVERSATIONAL = "conversational", "Conversational (texts as chat messages)"


class DatasetSnapshot(models.Model):
    """An exported dataset file. Immutable: a database trigger refuses updates (migration 0002)."""

    Kind = SnapshotKind

    kind = models.CharField(max_length=20, choices=Kind.choices)
    format = models.CharField(max_length=20, choices=SnapshotFormat.choices, default=SnapshotFormat.STANDARD)
    filters = models.JSONField(default=dict, blank=True)
    # What the file holds, counted with it: {"batches": {batch id: lines}, "outside_batches": lines}; {} for
    # snapshots exported before it was recorded (labeling.services.exports.snapshot_contents).
    contents = models.JSONField(default=dict, blank=True)
    row_count = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    file = models.CharField(max_length=500, help_text="Path relative to MEDIA_ROOT.")
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=SnapshotKind.values), name="snapshot_kind_valid"),
            models.CheckConstraint(
                condition=Q(format__in=SnapshotFormat.values), name="snapshot_format_valid"
            ),
        ]

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise ValueError("Dataset snapshots are immutable; create a new one instead.")
        super().save(*args, **kwargs)

    @property
    def filter_items(self) -> list[tuple[str, object]]:
        """The filters as (name, value) pairs, a list's values joined: how pages show them."""
        return [
            (key, ", ".join(map(str, value)) if isinstance(value, list) else value)
            for key, value in self.filters.items()
        ]

    def __str__(self) -> str:
        variant = "" if self.format == SnapshotFormat.STANDARD else f" {self.format}"
        return f"{self.kind}{variant} snapshot {self.pk} ({self.row_count} rows)"


class JobKind(models.TextChoices):
    PROMPT_IMPORT = "prompt_import", "Prompt import"
    COMPLETION_IMPORT = "completion_import", "Completion import"
    EXPORT = "export", "Dataset export"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Job(models.Model):
    """An import or an export, run on the default queue (a thread in the demo) rather than in the web
    request, with its progress and outcome (labeling/services/jobs.py)."""

    Kind = JobKind
    Status = JobStatus

    kind = models.CharField(max_length=20, choices=JobKind.choices)
    status = models.CharField(
        max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True
    )
    params = models.JSONField(
        default=dict, blank=True, help_text="What was asked: format, PII, batch, filters."
    )
    upload = models.CharField(
        max_length=500,
        blank=True,
        help_text="The uploaded file, relative to MEDIA_ROOT (a name the server chose).",
    )
    upload_name = models.CharField(max_length=255, blank=True, help_text="The name it was uploaded under.")
    progress_done = models.PositiveBigIntegerField(default=0)
    progress_total = models.PositiveBigIntegerField(default=0)
    message = models.TextField(blank=True, help_text="What the job is doing, or why it failed.")
    error_code = models.CharField(max_length=40, blank=True)
    errors = models.JSONField(
        default=list, blank=True, help_text="A rejected file's first errors: line, field, message."
    )
    error_count = models.PositiveIntegerField(default=0)
    result = models.JSONField(default=dict, blank=True, help_text="An import's counts.")
    batch = models.ForeignKey(Batch, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    snapshot = models.ForeignKey(
        DatasetSnapshot, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    worker_task_id = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(
        null=True, blank=True, help_text="When its task was last sent; a job queued too long is sent again."
    )
    progress_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When it last showed progress (or started); a job running without any for too long is failed.",
    )

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=JobKind.values), name="job_kind_valid"),
            models.CheckConstraint(condition=Q(status__in=JobStatus.values), name="job_status_valid"),
        ]

    @property
    def live(self) -> bool:
        return self.status in (JobStatus.QUEUED, JobStatus.RUNNING)

    def __str__(self) -> str:
        return f"{self.get_kind_display().lower()} job {self.pk} ({self.status})"
