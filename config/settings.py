"""Settings, all read from the environment (django-environ).

Unset DATABASE_URL means the one-command local demo: a SQLite file in the project folder.
Unset CELERY_BROKER_URL means tasks run in-process (see core.dispatch).
"""

from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (set DEBUG=1 for local work).")
    SECRET_KEY = "insecure-local-development-key-do-not-use-in-production"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "axes",
    "csp",
    "core",
    "labeling",
    "training",
    "audit",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files, with DEBUG off too, from whatever runs the app (gunicorn alone or behind the proxy).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "labeling.outage.DatabaseOutageMiddleware",  # a view's lost database connection: 503, not 500
    "labeling.sweeps.InlineSweepMiddleware",  # without a broker: closed undo windows' labels, every 15 s
    # Last, as django-axes requires: turns a lockout flagged during authentication into the lockout page.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out username and address before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "labeling.context_processors.roles",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The local demo trains in a background thread while pages are served: wait for locks, and take
    # the write lock at BEGIN so concurrent writers queue instead of failing.
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
elif DATABASES["default"]["ENGINE"].endswith("postgresql") and env.bool("DB_PREPARED_STATEMENTS", True):
    # Parameters bound by the server, and the statements a connection repeats prepared (from their 5th
    # run): Postgres parses and plans each once per connection, not on every call. Its CPU per labeling
    # cycle (next + submit, bench/labeling_load.py) fell from 5.2 to 3.0 ms. Off behind a transaction-pooling
    # PgBouncer older than 1.21 (DB_PREPARED_STATEMENTS=0): server-side binding without preparing costs more.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("server_side_binding", True)
    DATABASES["default"]["OPTIONS"].setdefault("prepare_threshold", 5)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend with a health check that asks the socket before sending SELECT 1 (config/postgresql).
    DATABASES["default"]["ENGINE"] = "config.postgresql"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": env.int("PASSWORD_MIN_LENGTH", default=12)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# WhiteNoise serves static files straight from where the finders find them (static/ and each app's), so the
# production command alone serves them, with no collectstatic step to forget. STATIC_ROOT is only where
# `collectstatic` would copy them, for a CDN or a proxy that wants them: unset, nothing is collected.
STATIC_ROOT = env.str("STATIC_ROOT", default="") or None
WHITENOISE_USE_FINDERS = True
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Production hardening: on whenever DEBUG is off; `manage.py check --deploy` passes.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Whether a request came over HTTPS is gunicorn's to say (config/gunicorn.conf.py): it believes the
# X-Forwarded-Proto header only from FORWARDED_ALLOW_IPS, the TLS proxy's address, so a client that reaches
# gunicorn directly cannot claim https. TRUST_X_FORWARDED_PROTO=1 makes Django believe the header itself,
# from whoever sent it: only for another server, reachable by nothing but a proxy that overwrites the header.
if env.bool("TRUST_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
# Our scripts read the CSRF token from the form they post (static/js/workspace/common.js) and Swagger UI
# gets it in its served script, so no script needs the cookie.
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp): scripts, styles, fonts and fetches from our own origin only. No
# inline script or style anywhere: pages hand data to static modules through json_script. Chart.js and
# SortableJS size and move elements through element.style (CSSOM), which style-src does not govern.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    },
}
# Where browsers report violations, if anywhere (env CSP_REPORT_URI; not a setting of that name, which
# django-csp 4 refuses as a leftover of its 3.x configuration).
if csp_report_uri := env.str("CSP_REPORT_URI", default=""):
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["report-uri"] = [csp_report_uri]

# Login throttling (django-axes, with our rules in core/login_throttle.py), on the login page, the admin's
# login, POST /api/v1/auth/token/ and the old-password check of /accounts/password/. Failed attempts are kept
# for AXES_COOLOFF_MINUTES after the last one; refused attempts are not counted. A client is refused when
# - its (username, address) pair has AXES_FAILURE_LIMIT failures (until they age out),
# - its address has LOGIN_ADDRESS_FAILURE_LIMIT failures across all usernames (until they age out),
# - or its username has LOGIN_USERNAME_FAILURE_LIMIT or more failures from any addresses: then each attempt
#   waits 1, 2, 4, ... seconds after the last failure, at most LOGIN_USERNAME_MAX_WAIT_SECONDS.
# None of these applies to a browser that logged in as that username before (a signed device cookie, kept
# LOGIN_DEVICE_DAYS) until it has AXES_FAILURE_LIMIT failures of its own: nobody, not even a colleague
# behind the same address, can lock a user out of the browser they use. Behind reverse proxies set
# TRUSTED_PROXY_COUNT, so that the address is the client's (X-Forwarded-For), not the proxy's.
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# A refused attempt checks no password, so it need not count: counting it would let anyone keep a
# username's wait going by retrying during it.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_HANDLER = "core.login_throttle.LoginThrottle"
AXES_LOCKOUT_CALLABLE = "core.login_throttle.lockout_response"
AXES_CLIENT_IP_CALLABLE = "core.login_throttle.client_ip"
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
LOGIN_ADDRESS_FAILURE_LIMIT = env.int("LOGIN_ADDRESS_FAILURE_LIMIT", default=30)
LOGIN_USERNAME_FAILURE_LIMIT = env.int("LOGIN_USERNAME_FAILURE_LIMIT", default=10)
LOGIN_USERNAME_MAX_WAIT_SECONDS = env.int("LOGIN_USERNAME_MAX_WAIT_SECONDS", default=300)
LOGIN_DEVICE_DAYS = env.int("LOGIN_DEVICE_DAYS", default=90)

# API tokens (django-rest-knox): stored as SHA-512 digests, the secret shown once; each expires
# API_TOKEN_TTL_HOURS after it was made, and a user holds at most API_TOKEN_LIMIT_PER_USER live ones. A
# password change and "log out everywhere" revoke all of a user's tokens (labeling/services/tokens.py).
REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=env.int("API_TOKEN_TTL_HOURS", default=24)),
    "TOKEN_LIMIT_PER_USER": env.int("API_TOKEN_LIMIT_PER_USER", default=10),
    "AUTO_REFRESH": False,
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first, so an anonymous call is answered 401 (with WWW-Authenticate) rather than 403.
        "core.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "EXCEPTION_HANDLER": "core.api.exceptions.exception_handler",
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    # A strict JSON reader (no NaN/Infinity, bounded nesting and integer length: a 400, never a 500).
    "DEFAULT_PARSER_CLASSES": [
        "core.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # DRF's, with a shortcut for clients that ask for no particular format (core/api/negotiation.py).
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "core.api.negotiation.ContentNegotiation",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Loopwork API",
    "DESCRIPTION": "Prompts, demonstrations, rankings, dataset snapshots and training runs.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    # No validator badge: it would send the schema's address to validator.swagger.io (and the CSP blocks it).
    "SWAGGER_UI_SETTINGS": {"deepLinking": False, "validatorUrl": None},
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Every enum of a field name several models share ("kind", "status", "format", "method") has its own
    # stable name, so client generators do not get hashed ones (Status398Enum); tests/api/test_schema.py
    # generates the schema with warnings as errors.
    "ENUM_NAME_OVERRIDES": {
        "FormatEnum": "labeling.services.imports.FORMATS",
        "SnapshotFormatEnum": "labeling.models.SnapshotFormat",
        "SnapshotKindEnum": "labeling.models.SnapshotKind",
        "JobKindEnum": "labeling.models.JobKind",
        "JobStatusEnum": "labeling.models.JobStatus",
        "BatchKindEnum": "labeling.models.BatchKind",
        "BatchStatusEnum": "labeling.models.BatchStatus",
        "AssignmentStatusEnum": "labeling.models.AssignmentStatus",
        "ModelKindEnum": "training.models.ModelKind",
        "RunKindEnum": "training.models.RunKind",
        "RunStatusEnum": "training.models.RunStatus",
        "RoundStatusEnum": "training.models.RoundStatus",
        "RoundMethodEnum": "training.api.ROUND_METHODS",
        "RoundBatchStatusEnum": ["active", "draft"],
    },
    # Documents our error answers (401/403/503 everywhere, 400/404/415 where they apply): see core/api/schema.py.
    "DEFAULT_GENERATOR_CLASS": "core.api.schema.ApiSchemaGenerator",
}

# Celery: without a broker the same tasks run in-process (a background thread), see core/dispatch.py.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=CELERY_BROKER_URL)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=12 * 3600)
}
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "training.tasks.execute_run": {"queue": "gpu"},
    "training.tasks.*": {"queue": "default"},
    "labeling.tasks.*": {"queue": "default"},
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
# No result is ever read (task state lives in Postgres), so a send never waits on a result store.
CELERY_TASK_IGNORE_RESULT = True

# The base causal LM of round 0: a path or hub id; empty means the tiny model training.ml builds.
BASE_MODEL = env.str("BASE_MODEL", default="")

# Prompt hygiene (InstructGPT section 3.2).
PROMPT_DEDUP_PREFIX_CHARS = env.int("PROMPT_DEDUP_PREFIX_CHARS", default=200)
PROMPTS_PER_ORIGIN_USER = env.int("PROMPTS_PER_ORIGIN_USER", default=200)
SPLIT_WEIGHTS = {"train": 80, "valid": 10, "test": 10}
# The undo window: for this many seconds after a submit the labeler may take it back (the task reopens as a
# draft); the label counts (exports, agreement, progress) only once the window has closed. 0: no undo.
LABELING_UNDO_SECONDS = env.int("LABELING_UNDO_SECONDS", default=30)

# Imports and exports run as jobs on the default queue (labeling/services/jobs.py). An uploaded file over
# IMPORT_MAX_FILE_BYTES is refused while it arrives, before anything parses it (labeling/uploads.py); an
# upload over FILE_UPLOAD_MAX_MEMORY_SIZE is spooled to a file in FILE_UPLOAD_TEMP_DIR (the system's
# temporary folder when unset), never held in memory. A line over IMPORT_MAX_LINE_BYTES is refused by
# its number without being read whole. A job writes its progress at most every JOB_PROGRESS_SECONDS.
IMPORT_MAX_FILE_BYTES = env.int("IMPORT_MAX_FILE_BYTES", default=256 * 1024 * 1024)
IMPORT_MAX_LINE_BYTES = env.int("IMPORT_MAX_LINE_BYTES", default=1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = env.int("FILE_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)
FILE_UPLOAD_TEMP_DIR = env.str("FILE_UPLOAD_TEMP_DIR", default="") or None
FILE_UPLOAD_HANDLERS = [
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "labeling.uploads.BoundedFileUploadHandler",
]
JOB_PROGRESS_SECONDS = env.float("JOB_PROGRESS_SECONDS", default=1.0)
# Lost jobs (labeling/services/jobs.py, swept every minute): a job still queued JOB_RESEND_SECONDS after its
# task was sent is sent again; while the queue cannot be reached, one queued longer than
# JOB_QUEUED_LIMIT_SECONDS is failed; one running without progress for JOB_RUNNING_LIMIT_SECONDS is failed.
JOB_RESEND_SECONDS = env.int("JOB_RESEND_SECONDS", default=600)
JOB_QUEUED_LIMIT_SECONDS = env.int("JOB_QUEUED_LIMIT_SECONDS", default=3600)
JOB_RUNNING_LIMIT_SECONDS = env.int("JOB_RUNNING_LIMIT_SECONDS", default=6 * 3600)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

# Training runs: how often a running run writes its heartbeat and progress, and when the reaper
# declares a run whose worker went silent failed.
TRAINING_HEARTBEAT_SECONDS = env.int("TRAINING_HEARTBEAT_SECONDS", default=5)
TRAINING_PROGRESS_SECONDS = env.float("TRAINING_PROGRESS_SECONDS", default=2.0)
TRAINING_STALE_SECONDS = env.int("TRAINING_STALE_SECONDS", default=90)
# Lost messages (training/services/recovery.py): a run still queued this long after its task was sent is
# sent again; while the queue cannot be reached, a run queued longer than the limit is failed.
TRAINING_RESEND_SECONDS = env.int("TRAINING_RESEND_SECONDS", default=600)
TRAINING_QUEUED_LIMIT_SECONDS = env.int("TRAINING_QUEUED_LIMIT_SECONDS", default=3600)
# How the GPU worker runs a stage (training/services/launch.py): "inprocess" (in the worker: the demo and
# CI), "accelerate" (child processes through `accelerate launch`) or "slurm"; and the shipped accelerate
# config (training/ml/launch/) a run or round uses when it names none.
TRAINING_LAUNCHER = env.str("TRAINING_LAUNCHER", default="inprocess")
if TRAINING_LAUNCHER not in ("inprocess", "accelerate", "slurm"):
    raise ImproperlyConfigured(
        f"TRAINING_LAUNCHER must be inprocess, accelerate or slurm; got {TRAINING_LAUNCHER!r}."
    )
TRAINING_LAUNCH_CONFIG = env.str("TRAINING_LAUNCH_CONFIG", default="single-gpu")
# Per-step settings every round starts from, under the round's own stage_config, as JSON, e.g.
# {"ppo": {"steps": 20, "batch_size": 16}}: `make run` sets small PPO sizes so the demo's round takes minutes.
TRAINING_ROUND_STAGE_CONFIG = env.json("TRAINING_ROUND_STAGE_CONFIG", default={})
if not isinstance(TRAINING_ROUND_STAGE_CONFIG, dict) or not all(
    isinstance(v, dict) for v in TRAINING_ROUND_STAGE_CONFIG.values()
):
    raise ImproperlyConfigured(
        'TRAINING_ROUND_STAGE_CONFIG must be a JSON object of objects, e.g. {"ppo": {"steps": 20}}.'
    )
# TRAINING_LAUNCHER=slurm (training/services/slurm.py): the #SBATCH lines of each stage's job. NODES and
# GPUS_PER_NODE apply to the configs that use every GPU (ddp, fsdp2, zero*); the others run on one node.
# Empty PARTITION, ACCOUNT or TIME leave the cluster's default; EXTRA_ARGS are more sbatch options
# ("--qos=high --constraint=h100"). MEDIA_ROOT must be on a filesystem every node mounts at the same path.
TRAINING_SLURM_PARTITION = env.str("TRAINING_SLURM_PARTITION", default="")
TRAINING_SLURM_ACCOUNT = env.str("TRAINING_SLURM_ACCOUNT", default="")
TRAINING_SLURM_NODES = env.int("TRAINING_SLURM_NODES", default=1)
TRAINING_SLURM_GPUS_PER_NODE = env.int("TRAINING_SLURM_GPUS_PER_NODE", default=8)
TRAINING_SLURM_TIME = env.str("TRAINING_SLURM_TIME", default="")
TRAINING_SLURM_EXTRA_ARGS = env.str("TRAINING_SLURM_EXTRA_ARGS", default="")
# Without a broker, management commands that wait (start_round --wait) run the tasks inline.
TASKS_INLINE = False
