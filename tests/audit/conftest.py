import pytest

from audit.models import AuditEvent


@pytest.fixture
def events():
    """The events recorded so far, oldest first, as (actor username or None, action, target id)."""

    def read(**filters) -> list[tuple]:
        return [
            (e.actor.username if e.actor else None, e.action, e.object_id)
            for e in AuditEvent.objects.filter(**filters).select_related("actor").order_by("pk")
        ]

    return read


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"
