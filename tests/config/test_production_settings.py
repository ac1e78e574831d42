"""config.settings as production loads it (DEBUG off, nothing else set), in a fresh interpreter: HTTPS
only, secure and httponly cookies, HSTS, no framing, the CSP, login throttling; `check --deploy` clean."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NAMES = [
    "DEBUG",
    "SECURE_SSL_REDIRECT",
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE",
    "CSRF_COOKIE_SECURE",
    "CSRF_COOKIE_HTTPONLY",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_CONTENT_TYPE_NOSNIFF",
    "SECURE_REFERRER_POLICY",
    "X_FRAME_OPTIONS",
    "AXES_ENABLED",
    "AXES_FAILURE_LIMIT",
    "AXES_LOCKOUT_PARAMETERS",
    "AUTHENTICATION_BACKENDS",
    "MIDDLEWARE",
    "CONTENT_SECURITY_POLICY",
    "AUTH_PASSWORD_VALIDATORS",
]
PRINT = f"""
import json
from django.conf import settings
print(json.dumps({{name: getattr(settings, name) for name in {NAMES!r}}}, default=str))
"""


def production_env() -> dict:
    """This environment without anything that would loosen the settings, and DEBUG off."""
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SECURE_", "AXES_", "CSP_", "DJANGO_", "DEBUG"))
    }
    return {
        **keep,
        "DEBUG": "0",
        "SECRET_KEY": "a-production-like-secret-key-that-is-long-and-random-enough-for-check-deploy-1234",
        "ALLOWED_HOSTS": "labels.example.org",
        "DATABASE_URL": "sqlite:///:memory:",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, env=production_env(), capture_output=True, text=True, timeout=300)


def test_production_settings_are_hardened():
    done = run(sys.executable, "-c", f"import django; django.setup(); {PRINT}")
    assert done.returncode == 0, done.stderr
    s = json.loads(done.stdout.strip().splitlines()[-1])
    assert s["DEBUG"] is False and s["SECURE_SSL_REDIRECT"] is True
    assert (
        s["SESSION_COOKIE_SECURE"] and s["SESSION_COOKIE_HTTPONLY"] and s["SESSION_COOKIE_SAMESITE"] == "Lax"
    )
    assert s["CSRF_COOKIE_SECURE"] and s["CSRF_COOKIE_HTTPONLY"]
    assert (
        s["SECURE_HSTS_SECONDS"] >= 31536000
        and s["SECURE_HSTS_INCLUDE_SUBDOMAINS"]
        and s["SECURE_HSTS_PRELOAD"]
    )
    assert s["SECURE_CONTENT_TYPE_NOSNIFF"] and s["SECURE_REFERRER_POLICY"] == "same-origin"
    assert s["X_FRAME_OPTIONS"] == "DENY"
    assert s["AXES_ENABLED"] and s["AXES_FAILURE_LIMIT"] == 5
    assert s["AXES_LOCKOUT_PARAMETERS"] == [["username", "ip_address"]]
    assert s["AUTHENTICATION_BACKENDS"][0] == "axes.backends.AxesStandaloneBackend"
    assert s["MIDDLEWARE"][-1] == "axes.middleware.AxesMiddleware"
    assert "csp.middleware.CSPMiddleware" in s["MIDDLEWARE"]
    directives = s["CONTENT_SECURITY_POLICY"]["DIRECTIVES"]
    assert directives["script-src"] == ["'self'"] and directives["style-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"] and directives["frame-ancestors"] == ["'none'"]
    assert directives["base-uri"] == ["'self'"] and directives["form-action"] == ["'self'"]
    minimum = next(v for v in s["AUTH_PASSWORD_VALIDATORS"] if v["NAME"].endswith("MinimumLengthValidator"))
    assert minimum["OPTIONS"]["min_length"] >= 12


def test_check_deploy_finds_no_security_issue():
    done = run(
        sys.executable, "manage.py", "check", "--deploy", "--tag", "security", "--fail-level", "WARNING"
    )
    assert done.returncode == 0, done.stdout + done.stderr
