import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.test.utils import override_settings

from labeling.errors import ServiceError
from training import dispatch
from training.models import Round, RoundStatus
from training.services.rounds import round_start


class Command(BaseCommand):
    help = (
        "Start the next round of the loop: export -> SFT -> RM -> PPO (or DPO) -> generate -> new ranking "
        "batch. Without a broker (no CELERY_BROKER_URL) the round runs in this process and the command waits."
    )

    def add_arguments(self, parser):
        parser.add_argument("--method", choices=["ppo", "dpo"], default="ppo")
        parser.add_argument(
            "--wait", action="store_true", help="Return when the round ended; exit 1 if it failed."
        )
        parser.add_argument("--k", type=int, default=4, help="Outputs per prompt in the new batch (2-9).")
        parser.add_argument("--prompt-limit", type=int, default=50)
        parser.add_argument("--batch-status", choices=["active", "draft"], default="active")
        parser.add_argument(
            "--mix-sft", action="store_true", help="Mix the SFT model's samples into the batch."
        )
        parser.add_argument(
            "--batch",
            type=int,
            action="append",
            default=[],
            dest="batches",
            help="Train on these batches only (repeatable); default: everything labeled.",
        )
        parser.add_argument(
            "--timeout", type=float, default=0, help="With --wait: give up after this many seconds."
        )

    def handle(self, *args, method, wait, timeout, **options):
        config = {
            "k": options["k"],
            "prompt_limit": options["prompt_limit"],
            "batch_status": options["batch_status"],
            "mix_sft": options["mix_sft"],
            "batches": options["batches"],
        }
        inline = not dispatch.uses_broker()
        try:
            with override_settings(TASKS_INLINE=inline or settings.TASKS_INLINE):
                rnd = round_start(method=method, config=config)
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"round {rnd.number} started ({method}).")
        if not (wait or inline):
            return
        started = time.monotonic()
        while True:
            rnd.refresh_from_db()
            if rnd.status != RoundStatus.RUNNING:
                break
            if timeout and time.monotonic() - started > timeout:
                raise CommandError(
                    f"round {rnd.number} still running after {timeout:.0f} s (step {rnd.step})."
                )
            time.sleep(2)
        if rnd.status == RoundStatus.FAILED:
            raise CommandError(f"round {rnd.number} failed at step '{rnd.step}': {rnd.error}")
        batch = rnd.batch
        self.stdout.write(
            f"round {rnd.number} succeeded: batch '{batch.name}' with {batch.tasks.count()} tasks."
        )


__all__ = ["Command", "Round"]
