import json
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.test.utils import override_settings

from core import dispatch
from core.errors import ServiceError
from training.ml.launch import LAUNCH_CONFIGS
from training.models import Round, RoundStatus
from training.services.recovery import round_resume
from training.services.rounds import round_fail, round_start, rounds_fail_gone


class Command(BaseCommand):
    help = (
        "Start the next round of the loop: export -> SFT -> RM -> PPO (or DPO) -> generate -> new ranking "
        "batch. Without a broker (no CELERY_BROKER_URL) the round runs in this process and the command waits; "
        "a round left running by a process that is gone (killed, restarted) is marked failed first. "
        "For a stuck round: --resume goes on with it, --fail-stuck fails it and starts a new one."
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
            "--launch-config",
            choices=list(LAUNCH_CONFIGS),
            default="",
            help="How its runs are launched when TRAINING_LAUNCHER is accelerate or slurm (see "
            "docs/scale-out.md); default: TRAINING_LAUNCH_CONFIG.",
        )
        parser.add_argument(
            "--stage-config",
            default="",
            metavar="JSON",
            help='Per-stage settings over the defaults, as on the round form, e.g. \'{"ppo": {"steps": 20}}\'.',
        )
        parser.add_argument(
            "--timeout", type=float, default=0, help="With --wait: give up after this many seconds."
        )
        stuck = parser.add_mutually_exclusive_group()
        stuck.add_argument(
            "--resume",
            action="store_true",
            help="Start no new round: go on with the running round, or else the last one if it failed, from "
            "the step it stopped at (training resumes from its last checkpoint; the round keeps its own "
            "settings, so --method, --k and the like are ignored). A running round whose process is gone "
            "is taken over by this one; with a broker, its lost messages are sent again now.",
        )
        stuck.add_argument(
            "--fail-stuck",
            action="store_true",
            help="If a round is still running, mark it failed (its unfinished runs stop; checkpoints are "
            "kept, so a later retry resumes), then start the new round. For a round that will never end: "
            "use it only when its process is gone or a message was lost.",
        )

    def handle(self, *args, method, wait, timeout, resume, fail_stuck, **options):
        config = {
            "k": options["k"],
            "prompt_limit": options["prompt_limit"],
            "batch_status": options["batch_status"],
            "mix_sft": options["mix_sft"],
            "batches": options["batches"],
            "launch_config": options["launch_config"],
        }
        if options["stage_config"]:
            config["stage_config"] = self._stage_config(options["stage_config"])
        inline = not dispatch.uses_broker()
        try:
            with override_settings(TASKS_INLINE=inline or settings.TASKS_INLINE):
                rnd = self._resume() if resume else self._start(method, config, fail_stuck)
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        if not (wait or inline):
            return
        self._wait(rnd, timeout)

    @staticmethod
    def _stage_config(text: str) -> dict:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CommandError(f"--stage-config: not JSON ({exc.msg} at character {exc.pos}).") from None
        if not isinstance(value, dict):
            raise CommandError('--stage-config: write a JSON object of stages, e.g. {"ppo": {"steps": 20}}.')
        return value

    def _start(self, method: str, config: dict, fail_stuck: bool) -> Round:
        for gone in rounds_fail_gone():
            self.stdout.write(f"round {gone.number} marked failed: {gone.error}")
        stuck = Round.objects.filter(status=RoundStatus.RUNNING).first()
        if stuck and fail_stuck:
            round_fail(
                rnd=stuck,
                error=f"failed by start_round --fail-stuck during step '{stuck.step}'. "
                "Retry it to go on from that step.",
            )
            self.stdout.write(f"round {stuck.number} marked failed (--fail-stuck).")
        elif stuck:
            raise CommandError(
                f"round {stuck.number} is still running (step '{stuck.step}'). Wait for it; if it is stuck, "
                "start_round --resume goes on with it, start_round --fail-stuck fails it and starts a new one."
            )
        rnd = round_start(method=method, config=config)
        self.stdout.write(f"round {rnd.number} started ({method}).")
        return rnd

    def _resume(self) -> Round:
        rnd = (
            Round.objects.filter(status=RoundStatus.RUNNING).first()
            or Round.objects.order_by("-number").first()
        )
        if rnd is None:
            raise CommandError("there is no round to resume; start one without --resume.")
        step = rnd.step
        rnd = round_resume(rnd=rnd)
        self.stdout.write(f"round {rnd.number} resumed from step '{step}'.")
        return rnd

    def _wait(self, rnd: Round, timeout: float) -> None:
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
        assert batch is not None  # a round succeeds once its last step made the batch
        self.stdout.write(
            f"round {rnd.number} succeeded: batch '{batch.name}' with {batch.tasks.count()} tasks."
        )


__all__ = ["Command", "Round"]
