from django.db import migrations, models


class Migration(migrations.Migration):
    """A run's and a round's launch config: the name of a shipped accelerate config (issue 16)."""

    dependencies = [
        ("training", "0005_recovery"),
    ]

    operations = [
        migrations.AddField(
            model_name="round",
            name="launch_config",
            field=models.CharField(
                blank=True,
                help_text="The accelerate config its training runs use (training/ml/launch/).",
                max_length=40,
            ),
        ),
        migrations.AddField(
            model_name="trainingrun",
            name="launch_config",
            field=models.CharField(
                blank=True,
                help_text="The shipped accelerate config it trains with when the worker launches stages (training/ml/launch/).",
                max_length=40,
            ),
        ),
    ]
