"""Login throttling: the rules django-axes applies (settings: "Login throttling"), the client's address, the
browser's device cookie and the page a refused login gets.

django-axes records every failed password check (login page, admin login, API token, old-password check)
as attempts per (username, address, user agent) and refuses a client before its password is checked. Its
own rule is one limit on one combination; ours are three, each a sum over those same attempts, so the
records, the admin pages and the reset commands (axes_reset, axes_reset_username, axes_reset_ip) stay
axes's:

- pair: AXES_FAILURE_LIMIT failures of one username from one address (guessing one account);
- address: LOGIN_ADDRESS_FAILURE_LIMIT failures from one address, any usernames (spraying);
- username: from LOGIN_USERNAME_FAILURE_LIMIT failures of one username, any addresses (a botnet guessing
  one account), each attempt waits 2**(failures - limit) seconds after the last failure, at most
  LOGIN_USERNAME_MAX_WAIT_SECONDS: a slow-down, never a lock.

All three bound strangers. Each would also let a colleague behind the same office address lock someone
out, so none applies to a browser holding a device cookie for that username (set by a successful login
on our page: OWASP's "device cookies"). Such a browser has a budget of AXES_FAILURE_LIMIT failures of its
own (recorded under its cookie's nonce), then the rules above apply to it too.
"""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from math import ceil
from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.core import signing
from django.db.models import Max, QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

# A request that django-axes's middleware and handler decorate with attributes of their own (axes_ip_address,
# axes_user_agent, axes_locked_out, axes_credentials) and ours (login_refusal): not an HttpRequest to a type checker.
AxesRequest = Any

DEVICE_COOKIE = "loopwork_device"
DEVICE_SALT = "core.login_throttle.device"
DEVICE_AGENT = "device:"  # recorded as the user agent of a device cookie's attempts, then its nonce


@dataclass(frozen=True)
class Refusal:
    """Why a login is refused, and for how many more seconds."""

    rule: str  # "pair", "address" or "username"
    seconds: int

    @property
    def message(self) -> str:
        wait = _duration(self.seconds)
        if self.rule == "address":
            return f"Too many failed logins from your address; try again in {wait}."
        if self.rule == "username":
            return (
                f"Too many failed logins for this username from several addresses; try again in {wait}. "
                "A browser you logged in with before is not held up."
            )
        return f"Too many failed logins for this username from your address; try again in {wait}."


def _duration(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    return f"{ceil(seconds / 60)} minutes"


def client_ip(request: HttpRequest) -> str | None:
    """The client's address. Behind TRUSTED_PROXY_COUNT reverse proxies it is the X-Forwarded-For entry
    the outermost trusted proxy appended: entries left of it are whatever the client sent, so never
    trusted. Without proxies (or without the header) it is REMOTE_ADDR."""
    proxies = settings.TRUSTED_PROXY_COUNT
    forwarded = [
        part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()
    ]
    if proxies and len(forwarded) >= proxies:
        return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR")


# --- the device cookie ------------------------------------------------------------------------------


def remember_device(response: HttpResponse, user: Any) -> None:
    """After a successful login on our page: this browser may log in as `user` past the throttles."""
    value = signing.dumps({"u": user.get_username(), "n": secrets.token_urlsafe(16)}, salt=DEVICE_SALT)
    response.set_cookie(
        DEVICE_COOKIE,
        value,
        max_age=settings.LOGIN_DEVICE_DAYS * 86400,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


def device_nonce(request: HttpRequest, username: str | None) -> str | None:
    """The nonce of the request's device cookie when it is ours, unexpired and for this username."""
    raw = request.COOKIES.get(DEVICE_COOKIE)
    if not raw or not username:
        return None
    try:
        data = signing.loads(raw, salt=DEVICE_SALT, max_age=settings.LOGIN_DEVICE_DAYS * 86400)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or data.get("u") != username or not isinstance(data.get("n"), str):
        return None
    return data["n"]


# --- the rules ----------------------------------------------------------------------------------------


def _recent(**match: Any) -> QuerySet[AccessAttempt]:
    since = timezone.now() - settings.AXES_COOLOFF_TIME
    return AccessAttempt.objects.filter(attempt_time__gte=since, **match)


def _held_until(attempts: QuerySet[AccessAttempt], limit: int) -> datetime | None:
    """When the attempts' failures drop below `limit` as they age out (None: they already are below).
    Each row counts until AXES_COOLOFF_TIME after its last failure."""
    total = 0
    for time, failures in attempts.order_by("-attempt_time").values_list(
        "attempt_time", "failures_since_start"
    ):
        total += failures
        if total >= limit:
            return time + settings.AXES_COOLOFF_TIME
    return None


def _username_wait_until(username: str) -> datetime | None:
    """The end of the username's slow-down, or None when it has too few failures for one."""
    found = _recent(username=username).aggregate(n=Sum("failures_since_start"), last=Max("attempt_time"))
    excess = (found["n"] or 0) - settings.LOGIN_USERNAME_FAILURE_LIMIT
    if excess < 0:
        return None
    seconds = min(2 ** min(excess, 30), settings.LOGIN_USERNAME_MAX_WAIT_SECONDS)
    return found["last"] + timedelta(seconds=seconds)


def refusal(request: AxesRequest, username: str | None) -> Refusal | None:
    """Which rule refuses this client a password check now, if any (see the module's docstring)."""
    now = timezone.now()
    nonce = device_nonce(request, username)
    if nonce is not None:
        request.axes_user_agent = DEVICE_AGENT + nonce  # its failures are recorded, and counted, apart
        own = _recent(username=username, user_agent=request.axes_user_agent)
        if (own.aggregate(n=Sum("failures_since_start"))["n"] or 0) < settings.AXES_FAILURE_LIMIT:
            return None
    address = request.axes_ip_address
    checks = [
        ("pair", _held_until(_recent(username=username, ip_address=address), settings.AXES_FAILURE_LIMIT)),
        ("address", _held_until(_recent(ip_address=address), settings.LOGIN_ADDRESS_FAILURE_LIMIT)),
        ("username", _username_wait_until(username) if username else None),
    ]
    for rule, until in checks:
        if until is not None and until > now:
            return Refusal(rule, max(1, ceil((until - now).total_seconds())))
    return None


class LoginThrottle(AxesDatabaseHandler):
    """axes's database handler, with our rules deciding who is refused (settings.AXES_HANDLER)."""

    def is_locked(self, request: AxesRequest, credentials: dict | None = None) -> bool:
        request.login_refusal = refusal(request, get_client_username(request, credentials))
        return request.login_refusal is not None

    def user_login_failed(
        self, sender: Any, credentials: dict, request: AxesRequest | None = None, **kwargs: Any
    ) -> None:
        """Records the failure (axes), then refuses at once if this failure crossed a limit: the page
        says so now rather than at the next attempt. A refused attempt was not counted."""
        refused_before = getattr(request, "axes_locked_out", False)
        super().user_login_failed(sender, credentials, request, **kwargs)
        if request is None or refused_before:
            return
        locked = self.is_locked(request, credentials)
        request.axes_locked_out = locked
        request.axes_credentials = credentials if locked else None


# --- checks outside authenticate() and the refusal page ----------------------------------------------


def password_check_allowed(request: AxesRequest, username: str) -> bool:
    """For a password checked without authenticate() (the old password of a password change): whether
    the throttles let this client try. A refusal flags the request for axes's middleware (the page)."""
    if not settings.AXES_ENABLED:
        return True
    if AxesProxyHandler.is_allowed(request, {"username": username}):
        return True
    request.axes_locked_out = True
    request.axes_credentials = {"username": username}
    return False


def password_check_failed(request: HttpRequest, username: str, sender: Any = None) -> None:
    """Counts a wrong password checked without authenticate(), as authenticate() would."""
    user_login_failed.send(sender=sender or __name__, credentials={"username": username}, request=request)


def login_refusal(request: HttpRequest) -> Refusal:
    """The refusal axes flagged on this request (a pair lock of the full cool-off if none was kept)."""
    found = getattr(request, "login_refusal", None)
    return found or Refusal("pair", int(settings.AXES_COOLOFF_TIME.total_seconds()))


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict | None = None
) -> HttpResponse:
    """429 with the login page's layout: which limit, how long to wait, and who can lift it sooner."""
    found = login_refusal(request)
    response = render(
        request,
        "registration/locked_out.html",
        {"refusal": found, "message": found.message, "failure_limit": settings.AXES_FAILURE_LIMIT},
        status=429,
    )
    response["Retry-After"] = str(found.seconds)
    return response
