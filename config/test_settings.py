"""The test suite's settings: the real settings, with test defaults for what the environment leaves unset."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/loopwork")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
# Labels count at once in the suite; the tests of the undo window set it themselves (tests/labeling/test_undo*.py).
os.environ.setdefault("LABELING_UNDO_SECONDS", "0")

from .settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests

# Login throttling is off in the suite: Django's test Client.login() calls authenticate() without a
# request, which django-axes refuses. The tests of throttling switch it on (tests/security/).
AXES_ENABLED = False
