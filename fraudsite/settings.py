"""Settings for every environment, read from environment variables.

Defaults run a self-contained demo (SQLite, the ORM task broker, local folders standing in for
the S3 bucket). Production sets DATABASE_URL, REDIS_URL, S3_BUCKET_NAME and friends; nothing
differs between environments except these variables.
"""

from __future__ import annotations

import ipaddress
import os
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


# Production mode: a SECRET_KEY is required, DEBUG is refused, and the HTTPS settings default
# on (behind a TLS-terminating proxy). `manage.py check --deploy` passes with it.
PRODUCTION = env_bool("PRODUCTION", False)
DEBUG = env_bool("DEBUG", False)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must be off in production (PRODUCTION=true)")
DATA_DIR = Path(env_str("DATA_DIR", str(BASE_DIR / "var"))).resolve()


def _owner_only(path: Path) -> None:
    """Take the group's and others' permissions off ``path``, if it has any: what an earlier
    version created open is closed on the next start."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
        if current & 0o077:
            path.chmod(current & ~0o077)
    except FileNotFoundError:
        pass
    except PermissionError as exc:  # not ours to change, a volume mounted read-only say
        warnings.warn(f"{path} is open to other users and cannot be closed: {exc}", stacklevel=2)


def _data_dir() -> Path:
    """DATA_DIR, created for its owner only: it holds the database, with the sessions and the
    password hashes, and the generated secrets."""
    DATA_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    _owner_only(DATA_DIR)
    return DATA_DIR


_owner_only(DATA_DIR)  # an existing one, even if nothing below writes to it


def _secret(name: str) -> str:
    """A secret from the environment; for a local run, one generated once into DATA_DIR, so no
    secret ever lives in the repository and it survives restarts."""
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
    # Last, as it asks: it turns a sign-in refused for too many failures into the lockout page.
    "axes.middleware.AxesMiddleware",
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
    """The SQLite database ``name``, created for its owner only before SQLite creates it open to
    all; SQLite gives its -wal and -shm files the database file's permissions."""
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
# SQLite is set up the same however it is named: in DATA_DIR, or by a sqlite:// DATABASE_URL.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["NAME"] = _sqlite_file(DATABASES["default"]["NAME"])
    # Keep the connection: closing the last connection to a WAL database checkpoints and removes
    # the WAL, which would otherwise happen after every request.
    DATABASES["default"]["CONN_MAX_AGE"] = None
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets the web workers read while the scheduler writes; IMMEDIATE takes the write
        # lock at BEGIN, so concurrent writers queue (busy timeout) instead of failing with
        # "database is locked" half-way through a transaction.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        # What the URL asks for itself (?timeout=5) wins.
        **DATABASES["default"].get("OPTIONS", {}),
    }
# SQLite: each web worker checkpoints the write-ahead log this often in a thread of its own, so
# that requests rarely wait for a checkpoint (common.sqlite); 0: only SQLite's own.
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
    # timeout leaves a retrain ample time; retry must exceed it, or a slow task is handed to a
    # second worker while the first still runs.
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

# --- Storage: the incoming data files and the model artifacts. Both are prefixes of one S3
# bucket when S3_BUCKET_NAME is set, local folders under DATA_DIR otherwise; all code goes
# through the storage API, so both run the same paths.
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
}
# Model artifacts are signed with this key (HMAC-SHA256), which must never be kept in the
# bucket: whoever can write the bucket cannot make an artifact the service will load. To rotate,
# set the new key and list the old ones, comma-separated, until no version needs them.
ARTIFACT_SIGNING_KEY = _secret("ARTIFACT_SIGNING_KEY")
ARTIFACT_SIGNING_OLD_KEYS = [k.strip() for k in env_str("ARTIFACT_SIGNING_OLD_KEYS").split(",") if k.strip()]
if any(len(key) < 32 for key in [ARTIFACT_SIGNING_KEY, *ARTIFACT_SIGNING_OLD_KEYS]):
    raise ImproperlyConfigured("ARTIFACT_SIGNING_KEY (and each old key) must be at least 32 characters")
MEDIA_ROOT = DATA_DIR / "media"
STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"

# --- Model operations.
FRAUD_TRAINING = {
    # Trees and depth of a new model; see modelops.ml.training.TrainConfig for the rest.
    "n_estimators": env_int("TRAIN_N_ESTIMATORS", 150),
    "max_depth": env_int("TRAIN_MAX_DEPTH", 6),
    "recall_target": env_float("TRAIN_RECALL_TARGET", 0.0) or None,
    # XGBoost threads while training; 0 is every core.
    "nthread": env_int("TRAIN_THREADS", 0),
}

# A running training run stamps its heartbeat this often; one silent for STALE_AFTER_BEATS
# beats (modelops.services.training_runs) belongs to a dead worker and no longer blocks training.
TRAINING_HEARTBEAT_SECONDS = env_float("TRAINING_HEARTBEAT_SECONDS", 30.0)
# After this many runs in a row abandoned by their worker, the schedule stops starting runs
# until one started by hand finishes (modelops.services.training_runs.crash_loop); 0 never pauses.
TRAINING_MAX_ABANDONED = env_int("TRAINING_MAX_ABANDONED", 3)
# How often the scheduler looks for new data files in the incoming storage (the original: hourly).
SCAN_INTERVAL_MINUTES = env_int("SCAN_INTERVAL_MINUTES", 60)
# A data file larger than this is rejected unread, so one upload cannot exhaust a worker's memory.
MAX_DATA_FILE_BYTES = env_int("MAX_DATA_FILE_BYTES", 512 * 1024 * 1024)
# Retraining: the newest rows kept, the metric that compares models on the shared hold-out, and
# how much worse than the active model a candidate may be and still be activated.
RETRAIN_MAX_ROWS = env_int("RETRAIN_MAX_ROWS", 2_000_000)
# Functions whose labelled rows retraining appends after the data files: each takes a time and
# returns (rows in schema.COLUMNS order, oldest first; whether each was first labelled after it).
# Named here so modelops never imports the apps that label.
RETRAIN_FEEDBACK_SOURCES = ["detection.feedback.labelled_rows"]
RETRAIN_METRIC = env_str("RETRAIN_METRIC", "auprc")
RETRAIN_TOLERANCE = env_float("RETRAIN_TOLERANCE", 0.01)
# A warm start adds TRAIN_N_ESTIMATORS trees (and the refit's quarter) to the active model's,
# and scoring time grows with the trees: it is tried only while the model it makes stays within
# this many trees; past that, only the full retrain is.
RETRAIN_WARM_START_MAX_TREES = env_int("RETRAIN_WARM_START_MAX_TREES", 600)

# --- API.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "detection.auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["detection.auth.ApiAccess"],
    "DEFAULT_THROTTLE_CLASSES": ["detection.auth.ClientRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["detection.renderers.FastJSONRenderer"],
    "EXCEPTION_HANDLER": "detection.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    # A client without a key is counted by its address: the connection's, unless proxies in
    # front of the app add X-Forwarded-For. Only as many of its entries (from the right) as there
    # are such proxies are believed; trusting the whole header would let a client pick a new
    # address, and so a new allowance, on every request.
    "NUM_PROXIES": env_int("TRUSTED_PROXIES", 0),
}
# API keys are required unless this keeps the API open (the local demo; clients of the
# original app, which sent no key). Off unless set.
SCORING_API_OPEN = env_bool("SCORING_API_OPEN", False)
# Requests per client (API key, user or address); "off": no limit. The default, 1,000 a second,
# is above what one instance serves, so it only stops a runaway client from starving others.
SCORING_RATE_LIMIT = env_str("SCORING_RATE_LIMIT", "60000/min")
if SCORING_RATE_LIMIT.lower() == "off":
    SCORING_RATE_LIMIT = ""
# PostgreSQL: false lets a scoring transaction's COMMIT return before its WAL reaches the disk
# (synchronous_commit = off, for that transaction only). No wait for the disk, but a crash of the
# database server (not of the app) can lose the last fraction of a second of acknowledged predictions;
# the database stays consistent. Other writes (activations, keys, labels) keep waiting. On by
# default; SQLite ignores it.
SCORING_SYNCHRONOUS_COMMIT = env_bool("SCORING_SYNCHRONOUS_COMMIT", True)
# A batch larger than this is refused with 400; the body size limit follows from it.
SCORING_MAX_BATCH = env_int("SCORING_MAX_BATCH", 10_000)
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", SCORING_MAX_BATCH * 1_200)
# Rows of a CSV file scored from the "Score a file" page, in one transaction.
SCORING_UPLOAD_MAX_ROWS = env_int("SCORING_UPLOAD_MAX_ROWS", 100_000)
# OpenAPI 3 schema at /api/schema/, Swagger UI at /api/docs/ from the app's own static files
# (drf-spectacular-sidecar: no CDN). The hand-written parts live in detection/openapi.py.
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

# --- Sign-in: Django's standard password rules, checked wherever a password is chosen (the
# admin's forms, changepassword, createsuperuser).
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Repeated wrong passwords lock a user name out from the address that sent them (django-axes),
# on the sign-in page and the admin's, until the cool-off has passed: per name and address
# together, so that a guesser cannot lock a user out everywhere. Signing in forgets the failures.
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
    """The address a sign-in is counted under: the one the API's rate limit counts the client
    under (NUM_PROXIES above), so X-Forwarded-For is believed only as far as TRUSTED_PROXIES
    says; believing more would give a client new tries with every address it names."""
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
    # One line per request; REQUEST_LOG_LEVEL=WARNING silences it (e.g. for benchmarks).
    "loggers": {"fraudsite.requests": {"level": env_str("REQUEST_LOG_LEVEL", "INFO")}},
}
