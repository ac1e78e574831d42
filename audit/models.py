"""The audit log: who did what to which object, and when. Rows are only ever added.

Written by `audit.services.audit_record` inside the transaction of the change it records, so a change
and its event are committed together or not at all. The model refuses updates and deletes, and on
Postgres and SQLite a trigger does too (migration 0002); the one change allowed is the database's own
SET NULL of `actor` when a user is deleted (`actor_name` keeps who it was).
"""

from django.conf import settings
from django.db import models


class Action(models.TextChoices):
    SNAPSHOT_CREATED = "snapshot.created", "Dataset snapshot exported"
    SNAPSHOT_DELETED = "snapshot.deleted", "Dataset snapshot deleted"
    ROLE_GRANTED = "role.granted", "Role granted"
    ROLE_REVOKED = "role.revoked", "Role revoked"
    BATCH_CREATED = "batch.created", "Batch created"
    BATCH_OPENED = "batch.opened", "Batch opened"
    BATCH_PAUSED = "batch.paused", "Batch paused"
    BATCH_RESUMED = "batch.resumed", "Batch resumed"
    BATCH_CLOSED = "batch.closed", "Batch closed"
    BATCH_LABELERS_ADDED = "batch.labelers_added", "Labelers added to a batch"
    BATCH_LABELERS_REMOVED = "batch.labelers_removed", "Labelers removed from a batch"
    RUN_STARTED = "run.started", "Training run started"
    RUN_RETRIED = "run.retried", "Training run retried"
    RUN_CANCELLED = "run.cancelled", "Training run cancelled"
    RUN_SUCCEEDED = "run.succeeded", "Training run succeeded"
    RUN_FAILED = "run.failed", "Training run failed"
    ROUND_STARTED = "round.started", "Round started"
    ROUND_RETRIED = "round.retried", "Round retried"
    ROUND_FAILED = "round.failed", "Round failed"
    ADMIN_ADDED = "admin.added", "Added in the Django admin"
    ADMIN_CHANGED = "admin.changed", "Changed in the Django admin"
    ADMIN_DELETED = "admin.deleted", "Deleted in the Django admin"
    TOKEN_CREATED = "token.created", "API token created"
    TOKEN_REVOKED = "token.revoked", "API tokens revoked"
    LABELER_CREATED = "user.created", "Labeler account created by a batch admin"
    PASSWORD_RESET = "user.password_reset", "Password reset by a batch admin"
    SUBMISSION_UNDONE = "submission.undone", "Submission taken back by its labeler (undo)"


class ImmutableEvent(Exception):
    pass


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise ImmutableEvent("audit events are never changed.")

    def delete(self):
        raise ImmutableEvent("audit events are never deleted.")


class AuditEvent(models.Model):
    # Null for the system (a worker, a schedule, a management command) or a user deleted since.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True, help_text="The actor's username at the time.")
    action = models.CharField(max_length=40, choices=Action.choices, db_index=True)
    object_type = models.CharField(
        max_length=100, help_text="app_label.model of the target, e.g. labeling.batch."
    )
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_event_object")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(action__in=Action.values), name="audit_event_action_valid"
            )
        ]

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ImmutableEvent("audit events are never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableEvent("audit events are never deleted.")

    def __str__(self) -> str:
        who = self.actor_name or "system"
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {who} {self.action} {self.object_type} {self.object_id}"
