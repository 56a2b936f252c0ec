from pathlib import Path

from . import tasknames
from .env import database_from_url, env_bool, env_int, env_secret, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("REVIEWAPP_VAR_DIR", str(BASE_DIR / "var")))
DATA_DIR = Path(env_str("REVIEWAPP_DATA_DIR", str(VAR_DIR / "data")))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_secret("SECRET_KEY", "dev-only-not-secret-change-me")
ALLOWED_HOSTS = [h for h in env_str("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h]
BASE_URL = env_str("REVIEWAPP_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

DATABASES = {"default": database_from_url(
    env_url("DATABASE_URL", f"sqlite:///{VAR_DIR / 'reviewapp.sqlite3'}",
            ("sqlite", "postgres", "postgresql", "pgsql")))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LORE_URL = env_url("LORE_URL", "https://lore.kernel.org/all", ("http", "https")).rstrip("/")
GRAPH_DEPTH = env_int("REVIEWAPP_GRAPH_DEPTH", 5, minimum=0)
REVIEW_TREE = env_str("REVIEWAPP_REVIEW_TREE", "")  # tree whose MAINTAINERS names expected reviewers when none applies
INFLIGHT_DAYS = env_int("REVIEWAPP_INFLIGHT_DAYS", 60, minimum=1)  # open series of a list: posted within this many days
FETCH_MAX_RETRIES = env_int("REVIEWAPP_FETCH_MAX_RETRIES", 3, minimum=0)
# What one mail may cost an import; over a limit it is quarantined with the reason.
INGEST_MAX_MAIL_BYTES = env_int("REVIEWAPP_MAX_MAIL_BYTES", 10 * 1024 * 1024, minimum=1024)
INGEST_MAX_FILES = env_int("REVIEWAPP_MAX_PATCH_FILES", 2000, minimum=1)
INGEST_MAX_HUNKS = env_int("REVIEWAPP_MAX_PATCH_HUNKS", 20000, minimum=1)
INGEST_MAX_PATCH_NUMBER = env_int("REVIEWAPP_MAX_PATCH_NUMBER", 1000, minimum=1)
INGEST_MAX_VERSION = env_int("REVIEWAPP_MAX_VERSION", 1000, minimum=1)
# Outside input bounds (docs/reliability.md): bytes an archive answer may
# have (as sent and inflated), seconds one thread fetch may take in all.
FETCH_MAX_BYTES = env_int("REVIEWAPP_FETCH_MAX_BYTES", 256 * 1024 * 1024, minimum=1024)
FETCH_TIMEOUT = env_int("REVIEWAPP_FETCH_TIMEOUT", 300, minimum=1)
GZIP_MAX_BYTES = env_int("REVIEWAPP_GZIP_MAX_BYTES", 4 * 1024 * 1024 * 1024, minimum=1024)
# A .gz file may inflate to this many times its size (real archives: ~4x), at least 64 MiB.
GZIP_MAX_RATIO = env_int("REVIEWAPP_GZIP_MAX_RATIO", 25, minimum=1)
BINARY_PATCH_MAX_BYTES = env_int("REVIEWAPP_BINARY_PATCH_MAX_BYTES", 16 * 1024 * 1024, minimum=1024)
SUITE_AFTER_APPLY = env_bool("REVIEWAPP_SUITE_AFTER_APPLY", True)
# What crosses hosts through the database (services/results.py): a chain's commits as a
# bundle, a suite's kept files. Bigger ones stay on the host that made them.
RESULT_MAX_BYTES = env_int("REVIEWAPP_RESULT_MAX_BYTES", 64 * 1024 * 1024, minimum=1024)
# Local repositories (colon-separated) whose objects a new mirror borrows (git alternates):
# a host with a kernel clone at hand makes its mirror without fetching the history again.
GIT_REFERENCES = [p for p in env_str("REVIEWAPP_GIT_REFERENCES", "").split(":") if p]
SYNC_BATCH = env_int("REVIEWAPP_SYNC_BATCH", 500, minimum=1)  # mails per transaction of a list sync
SYNC_STALE = env_int("REVIEWAPP_SYNC_STALE", 900, minimum=1)  # seconds before a silent sync is taken over
SYNC_TIMEOUT = env_int("REVIEWAPP_SYNC_TIMEOUT", 600, minimum=1)  # seconds per fetch from an archive
SYNC_SEARCH_DAYS = env_int("REVIEWAPP_SYNC_SEARCH_DAYS", 2, minimum=1)  # first search-fallback sync reaches back
SYNC_INTERVAL = env_int("REVIEWAPP_SYNC_INTERVAL", 600, minimum=10)  # seconds between beat syncs of all lists
# Leases on claimed work (reviewapp.services.leases): a running row whose worker has not
# beaten for LEASE_S is re-queued LEASE_MAX_REQUEUES times, then failed "worker lost".
LEASE_HEARTBEAT_S = env_int("REVIEWAPP_LEASE_HEARTBEAT_S", 30, minimum=1)
LEASE_S = env_int("REVIEWAPP_LEASE_S", 300, minimum=LEASE_HEARTBEAT_S * 2)
LEASE_MAX_REQUEUES = env_int("REVIEWAPP_LEASE_MAX_REQUEUES", 1, minimum=0)
LEASE_REAP_EVERY_S = env_int("REVIEWAPP_LEASE_REAP_EVERY_S", 60, minimum=1)
KERNEL_IMAGE = env_str("REVIEWAPP_KERNEL", str(VAR_DIR / "kernel"))  # a vmlinuz, or a dir holding vmlinuz-*
# The suite sandbox fails closed: no bubblewrap, no run. Setting this true accepts
# `unshare -rn` instead, which hides the network but NOT the host's files. Never in production.
SUITE_ALLOW_WEAK_SANDBOX = env_bool("REVIEWAPP_SUITE_ALLOW_WEAK_SANDBOX", False)
SUITE_BWRAP = env_str("REVIEWAPP_SUITE_BWRAP", "bwrap")  # the bubblewrap binary
SUITE_KERNEL_CACHE_MB = env_int("REVIEWAPP_SUITE_KERNEL_CACHE_MB", 2048, minimum=1)
DIGEST_SKIP_EMPTY = env_bool("REVIEWAPP_DIGEST_SKIP_EMPTY", False)

# Anonymous readers' pages, reused until the next committed write (reviewapp/pagecache.py).
PAGE_CACHE = env_bool("REVIEWAPP_PAGE_CACHE", True)
PAGE_CACHE_SECONDS = env_int("REVIEWAPP_PAGE_CACHE_SECONDS", 600, minimum=1)
PAGE_CACHE_MAX_BYTES = env_int("REVIEWAPP_PAGE_CACHE_MAX_BYTES", 512 * 1024, minimum=1024)
PAGE_CACHE_ALIAS = "pages"
# Per process by default (the generation key keeps pages correct, the newest revision id
# the list's count); redis://... shares both between the web processes.
_CACHE_URL = env_url("REVIEWAPP_CACHE_URL", "locmem://", ("locmem", "redis", "rediss"))


def _cache(name: str, entries: int) -> dict:
    if _CACHE_URL.startswith("locmem"):
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": f"reviewapp-{name}",
                "OPTIONS": {"MAX_ENTRIES": entries}}
    return {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _CACHE_URL,
            "KEY_PREFIX": f"reviewapp-{name}"}


CACHES = {"default": _cache("default", 1000),
          PAGE_CACHE_ALIAS: _cache("pages", env_int("REVIEWAPP_PAGE_CACHE_ENTRIES", 500, minimum=1))}

SMTP = {
    "host": env_str("SMTP_HOST", "127.0.0.1"),
    "port": env_int("SMTP_PORT", 25, minimum=1),
    "user": env_str("SMTP_USER", ""),
    "password": env_secret("SMTP_PASSWORD", ""),
    "starttls": env_bool("SMTP_STARTTLS", False),
    "ssl": env_bool("SMTP_SSL", False),
    "timeout": env_int("SMTP_TIMEOUT", 30, minimum=1),
}
DIGEST_FROM = env_str("DIGEST_FROM", "reviewapp <reviewapp@localhost>")

CELERY_BROKER_URL = env_url(
    "CELERY_BROKER_URL", "filesystem://", ("filesystem", "redis", "rediss", "amqp", "memory"))
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {"data_folder_in": str(VAR_DIR / "broker"), "data_folder_out": str(VAR_DIR / "broker"),
     "processed_folder": str(VAR_DIR / "broker-done"), "store_processed": False,
     "control_folder": str(VAR_DIR / "broker-control")}
    if CELERY_BROKER_URL.startswith("filesystem") else {})
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A queue per role (reviewapp/tasknames.py: ingest, apply, kernel, mail), so a worker host
# serves what it is fit for with -Q. The prefix keeps deployments sharing a broker apart.
QUEUE_PREFIX = env_str("REVIEWAPP_QUEUE_PREFIX", "")
CELERY_TASK_DEFAULT_QUEUE = QUEUE_PREFIX + "ingest"
CELERY_TASK_ROUTES = tasknames.routes(QUEUE_PREFIX)
CELERY_BEAT_SCHEDULE = {
    "send-due-digests": {"task": "worker.tasks.send_due_digests", "schedule": 3600.0},
    "sync-followed-lists": {"task": "worker.tasks_sync.sync_lists", "schedule": float(SYNC_INTERVAL)},
    "reap-leases": {"task": "worker.tasks.reap_leases", "schedule": float(LEASE_REAP_EVERY_S)},
    "compute-missing-graphs": {"task": "worker.tasks.compute_missing_graphs", "schedule": 600.0},
    "compute-missing-reviews": {"task": "worker.tasks.compute_missing_reviews", "schedule": 600.0},
}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "reviewapp",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "reviewapp.middleware.RejectMalformedRequests",
]
ROOT_URLCONF = "reviewapp.urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [BASE_DIR / "templates"],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
WSGI_APPLICATION = "reviewapp.wsgi.application"
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
USE_TZ = True
TIME_ZONE = "UTC"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"reviewapp": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
                # 500s (with their traceback) and other request errors.
                "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False}},
}

# REST API (/api/): tokens for scripts, sessions for the browsable pages; maintainers trigger.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["reviewapp.api.access.MaintainerWrites"],
    "DEFAULT_PAGINATION_CLASS": "reviewapp.api.pagination.Cursor",
    "DEFAULT_SCHEMA_CLASS": "reviewapp.api.schema.Schema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer",
                                 "rest_framework.renderers.BrowsableAPIRenderer"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "reviewapp API",
    "DESCRIPTION": "Series, revisions, dependency graphs, apply and suite runs of reviewapp.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
}
