"""API tokens: made, listed and revoked here, each change audited in its transaction.

A token is django-rest-knox's AuthToken: the SHA-512 digest of its secret, the secret's first 15
characters (its prefix, to find it by), when it was made and when it expires (settings.REST_KNOX). The
secret exists only in the answer that made it; the prefix names the token everywhere else (the tokens
page, the API, the audit log). Its owner, or a batch admin whose team they are in (labeling.teams), may
revoke it; a password change or "log out everywhere" revokes all of them.
"""

import re
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from knox.models import AuthToken
from knox.settings import CONSTANTS, knox_settings

from audit.services import Action, audit_record
from core.errors import ServiceError

from ..teams import team_labelers

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

PASSWORD_CHANGED = "password changed"
LOGGED_OUT_EVERYWHERE = "logged out everywhere"
REVOKED = "revoked"
PREFIX = re.compile(rf"[0-9a-f]{{{CONSTANTS.TOKEN_KEY_LENGTH}}}")  # knox's secrets are hex


def _live(tokens: QuerySet[AuthToken]) -> QuerySet[AuthToken]:
    return tokens.filter(Q(expiry__gt=timezone.now()) | Q(expiry__isnull=True))


def tokens_of(*, user: "User") -> QuerySet[AuthToken]:
    """The user's tokens that still work, newest first."""
    return _live(AuthToken.objects.filter(user=user)).order_by("-created")


def team_tokens(*, admin: "User") -> QuerySet[AuthToken]:
    """The live tokens of the labelers in `admin`'s team, newest first, with their owners."""
    tokens = AuthToken.objects.filter(user__in=team_labelers(admin)).select_related("user")
    return _live(tokens).order_by("-created")


def revocable_token(*, actor: "User", prefix: str) -> AuthToken | None:
    """The token with this prefix if `actor` may revoke it: their own, or a labeler's of their team."""
    if not PREFIX.fullmatch(prefix):
        return None
    owners = Q(user=actor) | Q(user__in=team_labelers(actor))
    return AuthToken.objects.filter(owners, token_key=prefix).select_related("user").first()


def tokens_delete_expired() -> int:
    """Delete every expired token (beat, hourly: migration 0017). knox deletes an expired token only when
    someone presents it; the digests of tokens nobody uses again would otherwise stay forever. Not
    audited: nothing is taken from anyone, the token stopped working when it expired."""
    deleted, _ = AuthToken.objects.filter(expiry__lte=timezone.now()).delete()
    return deleted


def _lock(user: "User") -> None:
    """One token change at a time per user: the limit holds, and a token made while a password changes
    is either revoked with the others or made after."""
    get_user_model().objects.select_for_update().filter(pk=user.pk).exists()


def token_create(*, user: "User", actor: "User | AnonymousUser | None" = None) -> tuple[AuthToken, str]:
    """A new token for `user` and its secret (shown once). `actor`: who asked (None: the user)."""
    limit = knox_settings.TOKEN_LIMIT_PER_USER
    with transaction.atomic():
        _lock(user)
        AuthToken.objects.filter(user=user, expiry__lte=timezone.now()).delete()
        if limit is not None and tokens_of(user=user).count() >= limit:
            raise ServiceError(
                f"{user.get_username()} already holds {limit} live API tokens, the most allowed "
                "(API_TOKEN_LIMIT_PER_USER); revoke one first (/accounts/tokens/ or "
                "DELETE /api/v1/auth/tokens/{prefix}/).",
                code="token_limit",
            )
        token, secret = AuthToken.objects.create(user=user, expiry=knox_settings.TOKEN_TTL)
        audit_record(
            actor=actor or user,
            action=Action.TOKEN_CREATED,
            target=user,
            details={"token": token.token_key, "expiry": token.expiry.isoformat() if token.expiry else None},
        )
    return token, secret


def token_revoke(*, token: AuthToken, actor: "User | AnonymousUser | None") -> None:
    with transaction.atomic():
        deleted, _ = AuthToken.objects.filter(pk=token.pk).delete()
        if deleted:
            details = {"tokens": [token.token_key], "reason": REVOKED}
            audit_record(actor=actor, action=Action.TOKEN_REVOKED, target=token.user, details=details)


def tokens_revoke_all(*, user: "User", actor: "User | AnonymousUser | None", reason: str) -> int:
    """Revoke every token of `user`; how many there were. Nothing is recorded when there were none."""
    with transaction.atomic():
        _lock(user)
        prefixes = _delete_tokens(user)
        if prefixes:
            details = {"tokens": prefixes, "reason": reason}
            audit_record(actor=actor, action=Action.TOKEN_REVOKED, target=user, details=details)
    return len(prefixes)


def _delete_tokens(user: "User") -> list[str]:
    tokens = AuthToken.objects.filter(user=user)
    prefixes = sorted(tokens.values_list("token_key", flat=True))
    tokens.delete()
    return prefixes


@dataclass(frozen=True)
class LoggedOut:
    tokens: int
    sessions: int


def log_out_everywhere(*, user: "User", keep_session: str | None = None) -> LoggedOut:
    """Revoke all of the user's tokens and end their browser sessions but `keep_session` (the one asking,
    if it is a browser)."""
    with transaction.atomic():
        _lock(user)
        prefixes = _delete_tokens(user)
        sessions = _end_sessions(user, keep=keep_session)
        audit_record(
            actor=user,
            action=Action.TOKEN_REVOKED,
            target=user,
            details={"tokens": prefixes, "reason": LOGGED_OUT_EVERYWHERE, "sessions_ended": sessions},
        )
    return LoggedOut(tokens=len(prefixes), sessions=sessions)


def _end_sessions(user: "User", *, keep: str | None) -> int:
    """End the user's sessions but `keep`. A session names its user only inside its encoded data, so
    this reads every live session: fine for a team's few thousand, and it runs only when asked. Session
    engines without a table (cache, signed cookies) cannot be listed: 0, and those sessions live on until
    they expire (a password change still ends them: Django checks the session's password hash)."""
    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    if not hasattr(store_class, "get_model_class"):
        return 0
    live = (
        store_class.get_model_class().objects.filter(expire_date__gt=timezone.now()).exclude(session_key=keep)
    )
    ended = 0
    for session in live.iterator():
        if session.get_decoded().get(SESSION_KEY) == str(user.pk):
            store_class(session_key=session.session_key).delete()  # the cache too, for cached_db
            ended += 1
    return ended
