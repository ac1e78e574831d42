from django.db import migrations, models


class Migration(migrations.Migration):
    """The audit action of the undo window: a labeler took a submission back (labeling/services/undo.py)."""

    dependencies = [
        ("audit", "0005_labeler_onboarding"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="auditevent",
            name="audit_event_action_valid",
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="action",
            field=models.CharField(
                choices=[
                    ("snapshot.created", "Dataset snapshot exported"),
                    ("snapshot.deleted", "Dataset snapshot deleted"),
                    ("role.granted", "Role granted"),
                    ("role.revoked", "Role revoked"),
                    ("batch.created", "Batch created"),
                    ("batch.opened", "Batch opened"),
                    ("batch.paused", "Batch paused"),
                    ("batch.resumed", "Batch resumed"),
                    ("batch.closed", "Batch closed"),
                    ("batch.labelers_added", "Labelers added to a batch"),
                    ("batch.labelers_removed", "Labelers removed from a batch"),
                    ("run.started", "Training run started"),
                    ("run.retried", "Training run retried"),
                    ("run.cancelled", "Training run cancelled"),
                    ("run.succeeded", "Training run succeeded"),
                    ("run.failed", "Training run failed"),
                    ("round.started", "Round started"),
                    ("round.retried", "Round retried"),
                    ("admin.added", "Added in the Django admin"),
                    ("admin.changed", "Changed in the Django admin"),
                    ("admin.deleted", "Deleted in the Django admin"),
                    ("token.created", "API token created"),
                    ("token.revoked", "API tokens revoked"),
                    ("user.created", "Labeler account created by a batch admin"),
                    ("user.password_reset", "Password reset by a batch admin"),
                    ("submission.undone", "Submission taken back by its labeler (undo)"),
                ],
                db_index=True,
                max_length=40,
            ),
        ),
        migrations.AddConstraint(
            model_name="auditevent",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    (
                        "action__in",
                        [
                            "snapshot.created",
                            "snapshot.deleted",
                            "role.granted",
                            "role.revoked",
                            "batch.created",
                            "batch.opened",
                            "batch.paused",
                            "batch.resumed",
                            "batch.closed",
                            "batch.labelers_added",
                            "batch.labelers_removed",
                            "run.started",
                            "run.retried",
                            "run.cancelled",
                            "run.succeeded",
                            "run.failed",
                            "round.started",
                            "round.retried",
                            "admin.added",
                            "admin.changed",
                            "admin.deleted",
                            "token.created",
                            "token.revoked",
                            "user.created",
                            "user.password_reset",
                            "submission.undone",
                        ],
                    )
                ),
                name="audit_event_action_valid",
            ),
        ),
    ]
