"""Without a broker (`make run`: no celery beat), the web process itself writes the labels of submissions
whose undo window has closed, at most every SWEEP_SECONDS, before it handles a request. With a broker the beat
task does it (labeling.tasks.finalise_submissions, every 15 s) and this does nothing; with no undo window
(LABELING_UNDO_SECONDS 0) no submission waits, and this does nothing either (not even a query).

Before, the demo wrote them only on the labeler's own next page, history or an export: a batch admin looking
at the batch while the labeler had left saw the last submission missing from the counts for good. Only this
sweep runs here: it touches rows of closed windows only (skip_locked, so an undo or another request's sweep is
never waited for), while the other periodic tasks (recovery, reaper, scheduled rounds) start or fail
training and stay with a real beat.
"""

import logging
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse

from core.dispatch import uses_broker

from .services.undo import submissions_finalise

log = logging.getLogger(__name__)

SWEEP_SECONDS = 15.0  # the beat task's interval (labeling migration 0015)


class InlineSweepMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.lock = threading.Lock()
        self.last = float("-inf")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if settings.LABELING_UNDO_SECONDS > 0 and not uses_broker() and self._due():
            try:
                submissions_finalise()
            except DatabaseError as exc:  # the request goes on; the next one after SWEEP_SECONDS tries again
                log.warning("undo sweep without a broker: %s", exc)
        return self.get_response(request)

    def _due(self) -> bool:
        with self.lock:
            now = time.monotonic()
            if now - self.last < SWEEP_SECONDS:
                return False
            self.last = now
            return True
