"""Files the server keeps under MEDIA_ROOT, found again by the path a row stores (a snapshot's `file`).

A stored path is trusted no further than MEDIA_ROOT: it is resolved (`..`, symbolic links) and refused
when it lands outside, so a row that names /etc/passwd or ../../secrets is never read, served, handed
to a training run or deleted. Every reader of a stored path goes through media_path.
"""

import logging
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

from core.errors import ServiceError

log = logging.getLogger(__name__)


def media_root() -> Path:
    return Path(settings.MEDIA_ROOT).resolve()


def media_path(stored: str, *, owner: str) -> Path:
    """The file a row stores as `stored` (relative to MEDIA_ROOT), resolved. `owner` names the row in
    the error ("snapshot 7"). Refused (code "path_outside_media") when it lies outside MEDIA_ROOT."""
    root = media_root()
    path = (root / stored).resolve()
    if not path.is_relative_to(root) or path == root:
        log.warning("refused %s: its stored path %r resolves outside MEDIA_ROOT", owner, stored)
        raise ServiceError(
            f"{owner}'s stored path does not lie under MEDIA_ROOT, so its file is not read; this server "
            "never writes such a path. Ask an operator to check the row.",
            code="path_outside_media",
        )
    return path


def media_open(stored: str, *, owner: str) -> BinaryIO:
    """media_path, opened for reading. A file that is gone is code "file_missing"; storage that cannot be
    read (MEDIA_ROOT missing or unreadable, a disk error) is code "storage_unavailable"."""
    path = media_path(stored, owner=owner)
    try:
        return path.open("rb")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
        if not media_root().is_dir():
            raise _unavailable(owner, exc) from exc
        raise ServiceError(
            f"{owner}'s file is missing from storage (MEDIA_ROOT); export it again.", code="file_missing"
        ) from exc
    except OSError as exc:
        raise _unavailable(owner, exc) from exc


def _unavailable(owner: str, exc: OSError) -> ServiceError:
    log.warning("could not read %s: %s", owner, exc)  # the full path, for whoever fixes the storage
    return ServiceError(
        f"The storage that holds {owner}'s file (MEDIA_ROOT) cannot be read right now: "
        f"{exc.strerror or exc}. Try again later.",
        code="storage_unavailable",
    )
