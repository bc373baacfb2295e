"""Settings, driven by the environment.

With no environment at all the project runs on the embedded default: SQLite, a
filesystem broker and a file cache under ``VAR_DIR``. Production sets
``DATABASE_URL``, ``CELERY_BROKER_URL``, ``CACHE_URL``, ``SECRET_KEY`` and
``FIELD_ENCRYPTION_KEYS`` (see README).
"""

import base64
import hashlib
import os
import urllib.parse
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))


def env_bool(name, default):
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_list(name, default=""):
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DJANGO_DEBUG is off.")
    SECRET_KEY = "dev-only-insecure-key-" + "x" * 40

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "accounts.apps.AdminConfig",  # django.contrib.admin, asking for the second factor
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "tickets",
    "channels_ingest",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "csp",
    "console",
    "api",
    "accounts",
    "portal",
]

MIDDLEWARE = [
    # First: a request body over UPLOAD_MAX_BYTES is refused before anything reads (and spools) it.
    "helpdesk.upload_limits.UploadLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): whether this session passed the second factor (accounts/two_factor.py).
    "django_otp.middleware.OTPMiddleware",
    "console.time_zones.TimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as axes asks: turns a locked-out sign-in into accounts.lockout's answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "helpdesk.urls"
WSGI_APPLICATION = "helpdesk.wsgi.application"

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
                "console.context_processors.console_role",
                "console.context_processors.broken_channels",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'helpdesk.sqlite3'}",
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and IMMEDIATE transactions let the web process, the worker and beat
    # share one SQLite file without "database is locked" errors.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
else:
    # Nothing here streams huge result sets; server-side cursors only added round trips (the console's
    # agent and queue selects iterate their querysets) and break behind a transaction-pooling pgbouncer.
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The cache also holds who is viewing which ticket (console/presence.py), so it must be shared by
# every web process: Redis in production, files under VAR_DIR on the embedded default (never locmem,
# which is per process).
CACHE_URL = os.environ.get("CACHE_URL", "")
# A Redis that stops answering (frozen, or cut off by the network) must not hang every request and task: redis-py
# waits forever by default. Cache calls give up after this many seconds and their callers degrade
# (docs/architecture.md, "Outages").
_cache_timeout = float(os.environ.get("CACHE_SOCKET_TIMEOUT", "2"))
REDIS_CACHE_OPTIONS = {"socket_connect_timeout": _cache_timeout, "socket_timeout": _cache_timeout}
if CACHE_URL.startswith("redis"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "OPTIONS": REDIS_CACHE_OPTIONS,
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Attachments (never served from a public URL: the console streams them to agents). In production the
# web and worker processes must share this folder (docker-compose mounts a volume), or use a shared storage.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Sign-in (accounts/). axes checks every password sign-in (the login page and the API's token endpoint) first.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Lockout: after AXES_FAILURE_LIMIT wrong passwords for one username from one address, that pair is refused
# (even with the right password) until AXES_COOLOFF_TIME has passed since the last attempt. Attempts are kept in
# the database, which works on the embedded default and does not fail open when the cache is down.
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("LOGIN_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_RESET_ON_SUCCESS = True
# Quiet at start-up (no banner on every command); failures and lockouts are still logged.
AXES_VERBOSE = False
# Behind a proxy the client's address is the proxy's unless REMOTE_ADDR is fixed up by the server (see README).
AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]
# API tokens (accounts/tokens.py, accounts/authentication.py): issued to agents and admins only, refused this long after they were issued.
API_TOKEN_TTL = timedelta(days=int(os.environ.get("API_TOKEN_TTL_DAYS", "7")))
# Set at sign-in when the user has a confirmed TOTP device; until they enter a code, the console and the API
# refuse the session (console/access.py, api/permissions.py, accounts/two_factor.py).
SECOND_FACTOR_SESSION_KEY = "second_factor_required"
OTP_TOTP_ISSUER = os.environ.get("OTP_TOTP_ISSUER", "Helpdesk")

# Single sign-on with OpenID Connect (mozilla-django-oidc, accounts/oidc.py), on when OIDC_RP_CLIENT_ID is set. The
# provider's endpoints come from OIDC_OP_* or, with OIDC_ISSUER alone, from its discovery document at start-up.
OIDC_RP_CLIENT_ID = os.environ.get("OIDC_RP_CLIENT_ID", "")
OIDC_ENABLED = bool(OIDC_RP_CLIENT_ID)
OIDC_RP_CLIENT_SECRET = os.environ.get("OIDC_RP_CLIENT_SECRET", "")
OIDC_RP_SIGN_ALGO = os.environ.get("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = "openid email profile"
OIDC_USE_PKCE = True
OIDC_TIMEOUT = 10
#: The sign-in page's button: "Sign in with …".
OIDC_PROVIDER_NAME = os.environ.get("OIDC_PROVIDER_NAME", "your company account")
LOGIN_REDIRECT_URL_FAILURE = "/login/?sso=failed"
if OIDC_ENABLED:
    from helpdesk.oidc_discovery import provider_endpoints

    _oidc = provider_endpoints(os.environ)
    OIDC_OP_AUTHORIZATION_ENDPOINT = _oidc["OIDC_OP_AUTHORIZATION_ENDPOINT"]
    OIDC_OP_TOKEN_ENDPOINT = _oidc["OIDC_OP_TOKEN_ENDPOINT"]
    OIDC_OP_USER_ENDPOINT = _oidc["OIDC_OP_USER_ENDPOINT"]
    OIDC_OP_JWKS_ENDPOINT = _oidc["OIDC_OP_JWKS_ENDPOINT"]
    AUTHENTICATION_BACKENDS.append("accounts.oidc.EmailMatchingOIDCBackend")

# Content-Security-Policy on every page (django-csp): no inline script or style, nothing from elsewhere. Views
# that serve untrusted content (an email's HTML, an attachment) set a stricter policy of their own, which wins.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}
if OIDC_ENABLED:
    # Signing in goes on at the provider: browsers apply form-action to where a form's answer redirects.
    _provider = urllib.parse.urlsplit(OIDC_OP_AUTHORIZATION_ENDPOINT)
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["form-action"].append(f"{_provider.scheme}://{_provider.netloc}")

# Security. Production (DEBUG off) is strict by default; a deployment behind
# a TLS-terminating proxy sets SECURE_PROXY_SSL_HEADER via the environment.
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env_bool("SECURE_PROXY_SSL", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Credentials of channels are encrypted with these Fernet keys; the first one
# encrypts, all of them decrypt, so keys can be rotated.
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEYS")
if not FIELD_ENCRYPTION_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS must be set when DJANGO_DEBUG is off.")
    FIELD_ENCRYPTION_KEYS = [base64.urlsafe_b64encode(hashlib.sha256(SECRET_KEY.encode()).digest()).decode()]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.IsAgent"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
# The schema maps every endpoint and field: for agents, like the API itself.
SPECTACULAR_SETTINGS = {
    "TITLE": "Helpdesk API",
    "VERSION": "0.1.0",
    "SERVE_PERMISSIONS": ["api.permissions.IsAgent"],
    # Impact and urgency share one scale (Ticket.Level): one enum in the schema, not two names for it.
    "ENUM_NAME_OVERRIDES": {"LevelEnum": "tickets.models.Ticket.Level"},
}

# Celery. The embedded default is kombu's filesystem transport, which needs no server. It ignores the host, but
# kombu warns "No hostname was supplied" in every process when the URL names none: so it names kombu's default.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://localhost/")
if CELERY_BROKER_URL.startswith("filesystem"):
    # kombu's filesystem transport does not create these folders: bin/run-embedded does, before it starts anything.
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # A task whose worker died unacknowledged is redelivered after this.
        "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "600")),
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULE = {
    "sweep": {
        "task": "channels_ingest.sweep",
        "schedule": timedelta(seconds=float(os.environ.get("SWEEP_SECONDS", "5"))),
    },
    # SLA warnings and breaches (tickets.sla.scan): an index read of what has come due, so cheap to run often.
    "sla-scan": {
        "task": "channels_ingest.sla_scan",
        "schedule": timedelta(seconds=float(os.environ.get("SLA_SCAN_SECONDS", "30"))),
    },
}

# Channel adapters by kind, chosen by dotted path (like Django's EMAIL_BACKEND). The tests add "locmem", an
# in-memory channel (tests/conftest.py), which a real desk must never offer.
CHANNEL_ADAPTERS = {
    "slack": "channel_adapters.slack.SlackAdapter",
    "x": "channel_adapters.x.XAdapter",
    "whatsapp": "channel_adapters.meta.whatsapp.WhatsAppAdapter",
    "facebook": "channel_adapters.meta.facebook.FacebookAdapter",
    "instagram": "channel_adapters.meta.instagram.InstagramAdapter",
    "email": "channel_adapters.email.adapter.EmailAdapter",
    "portal": "channel_adapters.portal.PortalAdapter",
}
#: What an email channel's ``email_backend`` may name (channels_ingest/mail_transport.py): Django's SMTP backend
#: is the default; add django-anymail backends here (and their keys in ANYMAIL) to send through an ESP.
EMAIL_CHANNEL_BACKENDS = [
    "django.core.mail.backends.smtp.EmailBackend",
    *[path for path in os.environ.get("EMAIL_CHANNEL_BACKENDS", "").split(",") if path],
]
INGEST_BATCH_SIZE = int(os.environ.get("INGEST_BATCH_SIZE", "500"))
# Loop protection: at most this many automatic acknowledgements to one requester in any hour
# (channels_ingest/acknowledgements.py), so two desks answering each other cannot go on forever.
AUTO_ACK_PER_SENDER_PER_HOUR = int(os.environ.get("AUTO_ACK_PER_SENDER_PER_HOUR", "3"))
DELIVERY_MAX_ATTEMPTS = int(os.environ.get("DELIVERY_MAX_ATTEMPTS", "5"))
#: Seconds the queue's shared view counts are reused across agents (console/view_counts.py).
CONSOLE_VIEW_COUNTS_TTL = int(os.environ.get("CONSOLE_VIEW_COUNTS_TTL", "10"))
# The console flags a reply still queued (or sending) this long: the channel may be slow or the worker down.
DELIVERY_STALE_SECONDS = int(os.environ.get("DELIVERY_STALE_SECONDS", "60"))
# An agent's presence on a ticket page (viewing, typing) lasts this long after their last heartbeat.
PRESENCE_TTL_SECONDS = int(os.environ.get("PRESENCE_TTL_SECONDS", "10"))
# The largest file kept from a message or sent with a reply; larger inbound files show as "too large".
ATTACHMENT_MAX_BYTES = int(os.environ.get("ATTACHMENT_MAX_BYTES", str(25 * 1024 * 1024)))
# A request body larger than this is refused (413) before it is read, so an upload never fills the disk
# (helpdesk/upload_limits.py). It allows a reply with ten files (the most a channel takes) of ATTACHMENT_MAX_BYTES.
UPLOAD_MAX_BYTES = int(os.environ.get("UPLOAD_MAX_BYTES", str(10 * ATTACHMENT_MAX_BYTES + 1024 * 1024)))
ATTACHMENT_FETCH_MAX_ATTEMPTS = int(os.environ.get("ATTACHMENT_FETCH_MAX_ATTEMPTS", "5"))
# Admins are told by email when a channel needs them (e.g. its monthly budget is spent).
ADMINS = [("", address) for address in env_list("ADMINS")]
SERVER_EMAIL = DEFAULT_FROM_EMAIL = os.environ.get("SERVER_EMAIL", "helpdesk@localhost")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
if DEBUG:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"

# Public base URL of this deployment, used to show webhook URLs to admins.
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"routine_tasks": {"()": "channels_ingest.task_logging.RoutineTaskLines"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # Celery's lines about the sweep and the polls, queued every few seconds, at DEBUG (the tasks log at
        # INFO themselves when they did something): the worker's and beat's terminal stays readable.
        **{
            name: {"filters": ["routine_tasks"]}
            for name in ("celery.beat", "celery.worker.strategy", "celery.app.trace")
        },
        # These clients log request headers or bodies at DEBUG, which would include credentials.
        "slack_sdk": {"level": "WARNING"},
        "tweepy": {"level": "WARNING"},
        "oauthlib": {"level": "WARNING"},
        "requests_oauthlib": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
        # Every successful sign-in is four INFO lines; failures and lockouts are WARNINGs.
        "axes": {"level": "WARNING"},
    },
}
