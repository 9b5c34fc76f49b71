"""Settings for every environment, read from environment variables: the defaults run a
self-contained demo, and production sets DATABASE_URL, REDIS_URL, S3_BUCKET_NAME and friends."""

from __future__ import annotations

import ipaddress
import os
import re
import stat
import warnings
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from common import secret_file

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    # Set but empty counts as unset: DATA_DIR="" must not put the database in the working folder.
    return os.environ.get(name) or default


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def _env_number(name: str, default, cast, kind: str):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return cast(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be {kind}, not {value!r}") from None


def env_int(name: str, default: int) -> int:
    return _env_number(name, default, int, "an integer")


def env_float(name: str, default: float) -> float:
    return _env_number(name, default, float, "a number")


# PRODUCTION requires a SECRET_KEY, refuses DEBUG and turns the HTTPS settings on by default.
PRODUCTION = env_bool("PRODUCTION", False)
DEBUG = env_bool("DEBUG", False)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must be off in production (PRODUCTION=true)")
DATA_DIR = Path(env_str("DATA_DIR", str(BASE_DIR / "var"))).resolve()


def _owner_only(path: Path) -> None:
    """Take group and other permissions off ``path``, closing what an earlier version left open."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
        if current & 0o077:
            path.chmod(current & ~0o077)
    except FileNotFoundError:
        pass
    except PermissionError as exc:  # not ours to change, a volume mounted read-only say
        warnings.warn(f"{path} is open to other users and cannot be closed: {exc}", stacklevel=2)


def _data_dir() -> Path:
    """DATA_DIR, created owner-only: it holds the database (sessions, password hashes) and secrets."""
    DATA_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    _owner_only(DATA_DIR)
    return DATA_DIR


_owner_only(DATA_DIR)  # an existing one, even if nothing below writes to it


def _secret(name: str) -> str:
    """A secret from the environment, or for a local run one generated once into DATA_DIR."""
    key = env_str(name)
    if key:
        return key
    if PRODUCTION:
        raise ImproperlyConfigured(f"{name} must be set in production (PRODUCTION=true)")
    path = DATA_DIR / name.lower()
    _owner_only(path)
    _data_dir()
    return secret_file.read_or_create(path)


SECRET_KEY = _secret("SECRET_KEY")
ALLOWED_HOSTS = [h.strip() for h in env_str("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in env_str("CSRF_TRUSTED_ORIGINS").split(",") if o.strip()]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "axes",
    "modelops",
    "detection",
]

MIDDLEWARE = [
    "fraudsite.middleware.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires.
    "axes.middleware.AxesMiddleware",
]
# POST /detect-fraud's chain (fraudsite/handlers.py): its request log, security headers and
# signed-in users, without what only pages need. DRF checks a signed-in user's CSRF token itself.
SCORING_MIDDLEWARE = [
    "fraudsite.middleware.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

ROOT_URLCONF = "fraudsite.urls"
WSGI_APPLICATION = "fraudsite.wsgi.application"

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
            ],
        },
    },
]

# --- Database: SQLite in DATA_DIR unless DATABASE_URL names another one.


def _sqlite_file(name):
    """The SQLite file, created owner-only before SQLite creates it open to all (-wal and -shm copy it)."""
    if str(name) in ("", ":memory:") or str(name).startswith("file:"):
        return name  # in memory, or a URI that SQLite opens itself
    path = Path(name)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        for other in (path.name, f"{path.name}-wal", f"{path.name}-shm"):
            _owner_only(path.with_name(other))
    except FileNotFoundError:
        pass  # no such folder: SQLite says so when the database is opened
    return path


DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": _data_dir() / "db.sqlite3"}}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["NAME"] = _sqlite_file(DATABASES["default"]["NAME"])
    # Keep the connection: closing a WAL database's last one checkpoints and removes the WAL.
    DATABASES["default"]["CONN_MAX_AGE"] = None
    DATABASES["default"]["OPTIONS"] = {
        # IMMEDIATE: writers wait for the lock at BEGIN, not fail "database is locked" mid-transaction.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        **DATABASES["default"].get("OPTIONS", {}),
    }
# SQLite: each web worker checkpoints the WAL this often off the request path; 0: only SQLite's own.
SQLITE_CHECKPOINT_SECONDS = env_float("SQLITE_CHECKPOINT_SECONDS", 0.02)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and task broker: local memory and the ORM unless REDIS_URL is set.
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

Q_CLUSTER = {
    "name": "fraudsite",
    "workers": env_int("Q_WORKERS", 1),
    # retry must exceed timeout, or a slow task is handed to a second worker while the first runs.
    "timeout": env_int("Q_TIMEOUT", 1800),
    "retry": env_int("Q_RETRY", 2100),
    "max_attempts": env_int("Q_MAX_ATTEMPTS", 3),
    # A schedule missed during downtime runs once, not once per missed interval.
    "catch_up": False,
    "save_limit": 500,
    "ack_failures": True,
    "poll": env_float("Q_POLL", 1.0),
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- Storage: prefixes of one S3 bucket if S3_BUCKET_NAME is set, else folders under DATA_DIR.
S3_BUCKET_NAME = env_str("S3_BUCKET_NAME")


def _bucket_storage(prefix: str) -> dict:
    if S3_BUCKET_NAME:
        return {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": S3_BUCKET_NAME,
                "location": prefix,
                "access_key": env_str("AWS_ACCESS_KEY_ID") or None,
                "secret_key": env_str("AWS_SECRET_ACCESS_KEY") or None,
                "region_name": env_str("REGION_NAME") or None,
                "endpoint_url": env_str("S3_ENDPOINT_URL") or None,
                "file_overwrite": True,
                "default_acl": None,
                "querystring_auth": False,
            },
        }
    return {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(DATA_DIR / "bucket" / prefix)},
    }


STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    "incoming": _bucket_storage(env_str("S3_INCOMING_PREFIX", "incoming")),
    "models": _bucket_storage(env_str("S3_MODELS_PREFIX", "models")),
    # CSVs of external_id,label,reported_at from other systems (chargeback feeds).
    "labels": _bucket_storage(env_str("S3_LABELS_PREFIX", "labels")),
}
# Artifacts are signed with this key, kept out of the bucket so that write access to it cannot plant
# a model. To rotate, set the new key and list the old ones until no version needs them.
ARTIFACT_SIGNING_KEY = _secret("ARTIFACT_SIGNING_KEY")
ARTIFACT_SIGNING_OLD_KEYS = [k.strip() for k in env_str("ARTIFACT_SIGNING_OLD_KEYS").split(",") if k.strip()]
if any(len(key) < 32 for key in [ARTIFACT_SIGNING_KEY, *ARTIFACT_SIGNING_OLD_KEYS]):
    raise ImproperlyConfigured("ARTIFACT_SIGNING_KEY (and each old key) must be at least 32 characters")
MEDIA_ROOT = DATA_DIR / "media"
STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"

# --- Model operations.
FRAUD_TRAINING = {
    "n_estimators": env_int("TRAIN_N_ESTIMATORS", 150),
    "max_depth": env_int("TRAIN_MAX_DEPTH", 6),
    "recall_target": env_float("TRAIN_RECALL_TARGET", 0.0) or None,
    # 0: every core.
    "nthread": env_int("TRAIN_THREADS", 0),
}

# How often a training run stamps its heartbeat; one silent for a few beats has a dead worker.
TRAINING_HEARTBEAT_SECONDS = env_float("TRAINING_HEARTBEAT_SECONDS", 30.0)
# Abandoned runs in a row after which the schedule pauses until a run started by hand ends; 0: never.
TRAINING_MAX_ABANDONED = env_int("TRAINING_MAX_ABANDONED", 3)
SCAN_INTERVAL_MINUTES = env_int("SCAN_INTERVAL_MINUTES", 60)
# A larger data file is rejected unread, so one upload cannot exhaust a worker's memory.
MAX_DATA_FILE_BYTES = env_int("MAX_DATA_FILE_BYTES", 512 * 1024 * 1024)
RETRAIN_MAX_ROWS = env_int("RETRAIN_MAX_ROWS", 2_000_000)
# Labelled rows for retraining, named here so that modelops never imports the apps that label.
RETRAIN_FEEDBACK_SOURCES = ["detection.feedback.labelled_rows"]
# The metric comparing candidate and active model on the hold-out, and how much worse it may be.
RETRAIN_METRIC = env_str("RETRAIN_METRIC", "auprc")
RETRAIN_TOLERANCE = env_float("RETRAIN_TOLERANCE", 0.01)
# A warm start adds trees, and each slows scoring: past this many, only a full retrain is tried.
RETRAIN_WARM_START_MAX_TREES = env_int("RETRAIN_WARM_START_MAX_TREES", 600)
# Retraining learns from the files whose names' time lies within this many days of the newest; 0: all.
RETRAIN_WINDOW_DAYS = env_int("RETRAIN_WINDOW_DAYS", 0)
# What a retrain does with the best candidate that passes: make it primary, or put it into shadow.
RETRAIN_PROMOTION = env_str("RETRAIN_PROMOTION", "activate")
if RETRAIN_PROMOTION not in ("activate", "shadow"):
    raise ImproperlyConfigured(f"RETRAIN_PROMOTION must be activate or shadow, not {RETRAIN_PROMOTION!r}")

# --- Training backend. "local": the task process reads the files and trains (RETRAIN_MAX_ROWS bounds
# it); "dask": XGBoost's Dask integration on a cluster whose workers read the bucket themselves.
TRAINING_BACKEND = env_str("TRAINING_BACKEND", "local")
if TRAINING_BACKEND not in ("local", "dask"):
    raise ImproperlyConfigured(f"TRAINING_BACKEND must be local or dask, not {TRAINING_BACKEND!r}")
# An existing cluster's scheduler (tcp://host:8786); unset, each run starts a LocalCluster of this size.
DASK_SCHEDULER_ADDRESS = env_str("DASK_SCHEDULER_ADDRESS")
DASK_LOCAL_WORKERS = env_int("DASK_LOCAL_WORKERS", 2)
DASK_LOCAL_THREADS = env_int("DASK_LOCAL_THREADS", 1)
DASK_WORKER_MEMORY = env_str("DASK_WORKER_MEMORY", "auto")

# --- Shadows and backtests.
SHADOW_CHUNK_ROWS = env_int("SHADOW_CHUNK_ROWS", 5_000)
# Only transactions stored longer ago than this are scored: a later commit may hold a lower id.
SHADOW_SETTLE_SECONDS = env_float("SHADOW_SETTLE_SECONDS", 5.0)
# One scheduled run (every minute) stops after this long; the next goes on from its watermark.
SHADOW_MAX_SECONDS = env_float("SHADOW_MAX_SECONDS", 50.0)
SHADOW_LAG_COUNT_UP_TO = env_int("SHADOW_LAG_COUNT_UP_TO", 100_000)
# The shadow page compares the latest this many transactions the shadow scored.
SHADOW_PAGE_ROWS = env_int("SHADOW_PAGE_ROWS", 200_000)
# Promote a shadow that beats the primary on RETRAIN_METRIC by more than RETRAIN_TOLERANCE, once
# both scored at least SHADOW_MIN_LABELLED labelled transactions.
SHADOW_AUTO_PROMOTE = env_bool("SHADOW_AUTO_PROMOTE", False)
SHADOW_MIN_LABELLED = env_int("SHADOW_MIN_LABELLED", 200)
BACKTEST_CHUNK_ROWS = env_int("BACKTEST_CHUNK_ROWS", 20_000)

# --- Monitoring of deployed versions.
MONITOR_WINDOW_MINUTES = env_int("MONITOR_WINDOW_MINUTES", 60)
# PSI past this in MONITOR_ALERT_WINDOWS windows in a row records a drift event; so does an alert
# rate MONITOR_ALERT_RATE_FACTOR times off the hold-out's. Only windows of MONITOR_MIN_TRANSACTIONS count.
MONITOR_PSI_ALERT = env_float("MONITOR_PSI_ALERT", 0.2)
MONITOR_ALERT_WINDOWS = env_int("MONITOR_ALERT_WINDOWS", 3)
MONITOR_ALERT_RATE_FACTOR = env_float("MONITOR_ALERT_RATE_FACTOR", 3.0)
MONITOR_MIN_TRANSACTIONS = env_int("MONITOR_MIN_TRANSACTIONS", 200)
# "alert": record the event only; "retrain": also queue a retrain if accepted data waits.
MONITOR_DRIFT_ACTION = env_str("MONITOR_DRIFT_ACTION", "alert")
if MONITOR_DRIFT_ACTION not in ("alert", "retrain"):
    raise ImproperlyConfigured(f"MONITOR_DRIFT_ACTION must be alert or retrain, not {MONITOR_DRIFT_ACTION!r}")
# Windows this recent are recomputed when their transactions get labels.
MONITOR_RELABEL_DAYS = env_int("MONITOR_RELABEL_DAYS", 30)
# GET /metrics: with a token, it must come as a bearer token; without, only the loopback may scrape.
METRICS_TOKEN = env_str("METRICS_TOKEN")
METRICS_ENABLED = env_bool("METRICS_ENABLED", True)

# --- API.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "detection.auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["detection.auth.ApiAccess"],
    "DEFAULT_THROTTLE_CLASSES": ["detection.rate_limit.ClientRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["detection.renderers.FastJSONRenderer"],
    "EXCEPTION_HANDLER": "detection.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    # X-Forwarded-For entries believed, from the right: one per proxy in front. Trusting more
    # would let a client pick a new address, and so a new allowance, on every request.
    "NUM_PROXIES": env_int("TRUSTED_PROXIES", 0),
}
# Open: no API key required (the local demo, or compatible clients that send none).
SCORING_API_OPEN = env_bool("SCORING_API_OPEN", False)
# How long a process trusts a key it checked: a revoked key is refused within this time everywhere.
API_KEY_CACHE_SECONDS = env_float("API_KEY_CACHE_SECONDS", 1.0)
# Per client (key, user or address); "off": no limit. The default only stops a runaway client.
SCORING_RATE_LIMIT = env_str("SCORING_RATE_LIMIT", "60000/min")
if SCORING_RATE_LIMIT.lower() == "off":
    SCORING_RATE_LIMIT = ""
elif not re.fullmatch(r"[0-9]+/[smhd][a-z]*", SCORING_RATE_LIMIT):
    raise ImproperlyConfigured(
        f"SCORING_RATE_LIMIT must be requests/period, such as 600/min, or off, not {SCORING_RATE_LIMIT!r}"
    )
# PostgreSQL: false lets scoring commits return before the disk has them; a database server crash
# can then lose the last acknowledged predictions, never consistency. SQLite ignores it.
SCORING_SYNCHRONOUS_COMMIT = env_bool("SCORING_SYNCHRONOUS_COMMIT", True)
# A batch larger than this is refused with 400; the body size limit follows from it.
SCORING_MAX_BATCH = env_int("SCORING_MAX_BATCH", 10_000)
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", SCORING_MAX_BATCH * 1_200)
SCORING_UPLOAD_MAX_ROWS = env_int("SCORING_UPLOAD_MAX_ROWS", 100_000)
# Batch jobs (POST /api/batches): scored by the task cluster, off the request path. Rows and bytes
# a job may hold (413 above); rows per stored chunk, each scored in its own transaction; the
# largest page of results; how long a queued or running job may go without progress before the
# sweep queues it again, and how many runs in a row may stop without scoring a chunk before it fails.
BATCH_MAX_ROWS = env_int("BATCH_MAX_ROWS", 100_000)
BATCH_MAX_BYTES = env_int("BATCH_MAX_BYTES", BATCH_MAX_ROWS * 1_200)
BATCH_CHUNK_ROWS = env_int("BATCH_CHUNK_ROWS", 500)
BATCH_PAGE_MAX = env_int("BATCH_PAGE_MAX", 1_000)
BATCH_STALL_SECONDS = env_float("BATCH_STALL_SECONDS", 300.0)
BATCH_MAX_ATTEMPTS = env_int("BATCH_MAX_ATTEMPTS", 5)
if min(BATCH_MAX_ROWS, BATCH_MAX_BYTES, BATCH_CHUNK_ROWS, BATCH_PAGE_MAX, BATCH_MAX_ATTEMPTS) < 1:
    raise ImproperlyConfigured(
        "BATCH_MAX_ROWS, BATCH_MAX_BYTES, BATCH_CHUNK_ROWS, BATCH_PAGE_MAX and BATCH_MAX_ATTEMPTS must be positive"
    )
# OpenAPI schema at /api/schema/, Swagger UI at /api/docs/ from our own static files (no CDN).
SPECTACULAR_SETTINGS = {
    "TITLE": "Fraud detection API",
    "VERSION": "1.0.0",
    "DESCRIPTION": (
        "Scores card transactions (ULB/Kaggle credit-card features: Time, V1..V28, Amount) for fraud "
        "with the active model version, and stores every transaction and decision. Errors always have "
        'the shape {"error": {"code", "message", "fields"?, "items"?}}.'
    ),
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # No call to swagger.io's online validator either: the page talks to this server only.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "REDOC_DIST": "SIDECAR",
    "PREPROCESSING_HOOKS": ["detection.openapi.drop_duplicate_routes"],
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "queue"
LOGOUT_REDIRECT_URL = "login"

# --- Sign-in: Django's standard password rules.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Wrong passwords lock a name out from that address only: a guesser cannot lock it out everywhere.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("SIGNIN_FAILURE_LIMIT", 5)
# Every failed try during a lockout starts the cool-off again.
AXES_COOLOFF_TIME = timedelta(minutes=env_int("SIGNIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"


def _client_address(request) -> str | None:
    """The address a sign-in is counted under, the rate limit's (NUM_PROXIES): believing more of
    X-Forwarded-For would give a client new tries with every address it names."""
    from rest_framework.throttling import BaseThrottle  # settings are read before the apps load

    address = BaseThrottle().get_ident(request)
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        # An entry no proxy wrote (the request came round one of them): the connection's own.
        return request.META.get("REMOTE_ADDR")


AXES_CLIENT_IP_CALLABLE = _client_address

# --- Production hardening: HTTPS settings follow one switch, set behind a TLS proxy.
BEHIND_TLS_PROXY = env_bool("BEHIND_TLS_PROXY", PRODUCTION)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_TLS_PROXY else None
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE_SSL_REDIRECT = BEHIND_TLS_PROXY
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", PRODUCTION)
# The probes answer over plain HTTP inside the network, before the proxy's redirect.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_CONTENT_TYPE_NOSNIFF = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # One line per request; REQUEST_LOG_LEVEL=WARNING silences it.
    "loggers": {"fraudsite.requests": {"level": env_str("REQUEST_LOG_LEVEL", "INFO")}},
}
