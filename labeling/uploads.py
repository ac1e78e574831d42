"""Uploaded files: one larger than IMPORT_MAX_FILE_BYTES is refused while it arrives.

Django keeps a small upload in memory and spools a larger one to a temporary file, of any size
(DATA_UPLOAD_MAX_MEMORY_SIZE leaves files out). This handler takes the place of Django's temporary-file
handler (settings.FILE_UPLOAD_HANDLERS): past the limit it deletes what it wrote and only counts the rest,
which must still be read off the connection to answer at all, and hands the view an empty stand-in that
carries the upload's size, so the form or serializer refuses it by its field (jobs.upload_check_size).
Django offers no setting for this; a reverse proxy in front should refuse such bodies too.
"""

import io
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import TemporaryFileUploadHandler


class OversizedUpload(UploadedFile):
    """An upload refused for its size: its name and size, no content."""

    def __init__(
        self,
        name: str | None,
        content_type: str | None,
        size: int,
        charset: str | None,
        content_type_extra: dict[str, bytes] | None,
    ) -> None:
        super().__init__(io.BytesIO(), name, content_type, size, charset, content_type_extra)


class BoundedFileUploadHandler(TemporaryFileUploadHandler):
    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.oversized = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        if not self.oversized and start + len(raw_data) <= settings.IMPORT_MAX_FILE_BYTES:
            return super().receive_data_chunk(raw_data, start)
        if not self.oversized:
            self.oversized = True
            self.file.close()  # a NamedTemporaryFile: closing it deletes it
        return None

    def file_complete(self, file_size: int) -> UploadedFile | None:
        if self.oversized:
            return OversizedUpload(
                self.file_name, self.content_type, file_size, self.charset, self.content_type_extra
            )
        return super().file_complete(file_size)
