"""What django-axes (login throttling, configured in settings) asks of us: the client's address, and the
page a locked-out login gets."""

from math import ceil

from axes.helpers import get_cool_off
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


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


def cool_off_seconds(request: HttpRequest | None = None) -> int:
    cool_off = get_cool_off(request)
    return int(cool_off.total_seconds()) if cool_off else 0


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """429 with the login page's layout: how long to wait, and who can lift the lock sooner."""
    seconds = cool_off_seconds(request)
    response = render(
        request,
        "registration/locked_out.html",
        {"minutes": ceil(seconds / 60), "failure_limit": settings.AXES_FAILURE_LIMIT},
        status=429,
    )
    if seconds:
        response["Retry-After"] = str(seconds)
    return response
