"""Roomkey settings, read from the environment with django-environ.

Development defaults are safe and need nothing installed: SQLite, an in-memory cache and an
in-memory channel layer. Production sets DJANGO_DEBUG=false, DJANGO_SECRET_KEY,
DJANGO_ALLOWED_HOSTS, DATABASE_URL (PostgreSQL) and REDIS_URL, and then passes
`manage.py check --deploy`.
"""

import secrets
from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if env.bool("DJANGO_READ_DOT_ENV", default=False):
    environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DJANGO_DEBUG", default=True)


def _dev_secret_key() -> str:
    # Never commit a key: in development one is made on first use and kept beside the
    # checkout (git-ignored), so admin logins survive restarts.
    path = BASE_DIR / ".dev-secret-key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        key = secrets.token_urlsafe(50)
        path.write_text(key)
        path.chmod(0o600)
        return key


SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or (_dev_secret_key() if DEBUG else "")
if not SECRET_KEY:
    raise environ.ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is false")

ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "channels",
    "axes",
    "tokens",
    "limits",
    "chat",
    "agents",
]

MIDDLEWARE = [
    # Outermost: no API path answers an HTML error page (tokens.errors).
    "tokens.errors.APIErrorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: refuses a locked-out admin login before its password is hashed.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = env.str("DJANGO_ROOT_URLCONF", default="config.urls")

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

WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

# --- Database -------------------------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions take the write lock up front, so two writers queue instead of
    # one failing with "database is locked" when it upgrades a read lock.
    # WAL lets readers run beside the writer, and synchronous=NORMAL is safe with WAL.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Under ASGI each request runs on a fresh thread with its own connection; persistent
    # connections (CONN_MAX_AGE) then pile up past PostgreSQL's max_connections. A pool
    # shared by the process bounds them and saves the connect on every request.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A database that is down, unreachable or hung costs a request about a second and a 503,
    # not minutes, and the pool is serving again within seconds of its return (README
    # "Failure behaviour"). PostgreSQL cancels a statement running longer than the statement
    # timeout; a server that has not answered a quarter second after that (a blackholed
    # route, a hung host) is given up on (config.postgres), as the kernel gives up on one
    # that stops acknowledging (tcp_user_timeout). The pool checks a connection before
    # handing it out (CONN_HEALTH_CHECKS), so connections broken by an outage are replaced,
    # not answered with; and a reconnection that keeps failing stops backing off after the
    # reconnect timeout, so the next request tries at once instead of after a long backoff.
    from config.postgres import connection_class

    statement_timeout = env.float("DJANGO_DB_STATEMENT_TIMEOUT", default=1.0)
    answer_timeout = statement_timeout + 0.25 if statement_timeout > 0 else 0.0
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    db_options = DATABASES["default"].setdefault("OPTIONS", {})
    db_options["connect_timeout"] = env.int("DJANGO_DB_CONNECT_TIMEOUT", default=2)
    if statement_timeout > 0:
        server_options = db_options.get("options", "")
        db_options["options"] = (
            f"{server_options} -c statement_timeout={round(statement_timeout * 1000)}".strip()
        )
        db_options["tcp_user_timeout"] = round(answer_timeout * 1000)
    db_options["pool"] = {
        "min_size": env.int("DJANGO_DB_POOL_MIN", default=2),
        "max_size": env.int("DJANGO_DB_POOL_MAX", default=16),
        "timeout": env.float("DJANGO_DB_POOL_TIMEOUT", default=1.0),
        "reconnect_timeout": env.float("DJANGO_DB_RECONNECT_TIMEOUT", default=2.0),
        "connection_class": connection_class(answer_timeout),
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -----------------------------------------------------------------------------------
# Staff log in to the admin with passwords; API consumers never do (API keys, tokens).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# django-axes: after this many failed admin logins for one username, or from one address, further
# attempts are refused (429) without checking the password, until the cool-off ends or staff
# delete the record (admin: Axes > Access attempts, or `manage.py axes_reset`).
AXES_FAILURE_LIMIT = env.int("ROOMKEY_ADMIN_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("ROOMKEY_ADMIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
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
STATIC_ROOT = BASE_DIR / "staticfiles"
# Under ASGI nothing serves static files; config/asgi.py wraps the app with Django's static
# handler when this is on (development). Production puts a CDN or the proxy in front.
ROOMKEY_SERVE_STATIC = env.bool("ROOMKEY_SERVE_STATIC", default=DEBUG)

# --- DRF ------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tokens.authentication.ApiKeyBearerAuthentication",
        "tokens.authentication.ApiKeyBasicAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "tokens.parsers.BoundedJSONParser",
        "tokens.parsers.BoundedFormParser",
    ],
    "DEFAULT_RENDERER_CLASSES": ["tokens.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
}

# --- Roomkey --------------------------------------------------------------------------------
# Read at call time through tokens.conf.roomkey_settings (tests use the `settings` fixture).
ROOMKEY = {
    # Issued-token rows are kept this long after they expire, then `cleartokens` purges them.
    "TOKEN_RETENTION": timedelta(days=env.int("ROOMKEY_TOKEN_RETENTION_DAYS", default=30)),
    # Rows deleted per batch by `cleartokens`.
    "CLEAR_BATCH_SIZE": env.int("ROOMKEY_CLEAR_BATCH_SIZE", default=1000),
    # How long a process keeps a project's signing keys before reading them again.
    "SIGNING_KEY_CACHE_SECONDS": env.float("ROOMKEY_SIGNING_KEY_CACHE_SECONDS", default=5.0),
    # Largest request body accepted: bigger ones are refused by tokens.asgi.RequestBodyLimit
    # before Django reads them (and by the API parsers, under any other server).
    "MAX_BODY_BYTES": env.int("ROOMKEY_MAX_BODY_BYTES", default=1024 * 1024),
    # The browser origins (besides ALLOWED_HOSTS) whose pages may open Roomkey's WebSockets.
    "WS_ALLOWED_ORIGINS": env.list("ROOMKEY_WS_ALLOWED_ORIGINS", default=[]),
}

# --- Chat (README "Chat") -------------------------------------------------------------------
# Read at call time through chat.conf.chat_settings.
ROOMKEY_CHAT = {
    # Public WebSocket URL of the relay put in chat tokens' `ch` header. Empty: derived from
    # the request (ws:// or wss:// + Host + /api/relay/ws).
    "RELAY_URL": env.str("ROOMKEY_CHAT_RELAY_URL", default=""),
    # Seconds a relay socket has to authenticate, its largest frame in bytes, and how often an
    # idle socket re-checks its token.
    "AUTH_TIMEOUT_SECONDS": env.float("ROOMKEY_CHAT_AUTH_TIMEOUT_SECONDS", default=5.0),
    "MAX_FRAME_BYTES": env.int("ROOMKEY_CHAT_MAX_FRAME_BYTES", default=128 * 1024),
    "RECHECK_SECONDS": env.float("ROOMKEY_CHAT_RECHECK_SECONDS", default=30.0),
}

# --- LiveKit and voice sessions (agents) -----------------------------------------------------
# The LiveKit server projects use unless they have their own (agents.LiveKitConfig). The
# development defaults are LiveKit's own dev mode (`livekit-server --dev`, key "devkey") with a
# long secret of our own; with DEBUG off there are no defaults, and the deploy checks refuse the
# development secret (agents/checks.py).
LIVEKIT_DEV_API_SECRET = "roomkey-development-livekit-secret-do-not-use-in-production"
LIVEKIT_URL = env.str("LIVEKIT_URL", default="ws://127.0.0.1:7880" if DEBUG else "")
LIVEKIT_API_KEY = env.str("LIVEKIT_API_KEY", default="devkey" if DEBUG else "")
LIVEKIT_API_SECRET = env.str("LIVEKIT_API_SECRET", default=LIVEKIT_DEV_API_SECRET if DEBUG else "")
# Read at call time through agents.conf.agents_settings.
ROOMKEY_AGENTS = {
    # Lifetime of a voice-session token: the longest a voice WebSocket stays open.
    "VOICE_SESSION_TTL": timedelta(
        seconds=env.int("ROOMKEY_VOICE_SESSION_TTL_SECONDS", default=3600)
    ),
    # Lifetime of LiveKit access tokens (LiveKit checks them when a participant joins).
    "LIVEKIT_TOKEN_TTL": timedelta(
        seconds=env.int("ROOMKEY_LIVEKIT_TOKEN_TTL_SECONDS", default=3600)
    ),
    # Call sessions and tool tokens (README "Call sessions and tool tokens").
    "TOOL_TOKEN_TTL": env.int("ROOMKEY_TOOL_TOKEN_TTL", default=900),
    "TOOL_TOKEN_MAX_TTL": env.int("ROOMKEY_TOOL_TOKEN_MAX_TTL", default=86400),
    "TOOL_SECRET_GRACE": timedelta(seconds=env.int("ROOMKEY_TOOL_SECRET_GRACE", default=3600)),
    "TOOL_STATE_CACHE_SECONDS": env.float("ROOMKEY_TOOL_STATE_CACHE_SECONDS", default=1.0),
    "CALL_SESSION_TTL": timedelta(seconds=env.int("ROOMKEY_CALL_SESSION_TTL", default=86400)),
    "CALL_SESSION_RETENTION": timedelta(
        days=env.int("ROOMKEY_CALL_SESSION_RETENTION_DAYS", default=7)
    ),
}

# --- Cache and channel layer: in memory by default, Redis when REDIS_URL is set -------------
REDIS_URL = env.str("REDIS_URL", default="")
# Every Redis call answers or fails within this many seconds (connect and read), so a hung
# Redis fails requests and sockets fast instead of holding them (README "Failure behaviour").
REDIS_TIMEOUT_SECONDS = env.float("ROOMKEY_REDIS_TIMEOUT_SECONDS", default=1.0)
REDIS_POOL_OPTIONS = {
    "socket_timeout": REDIS_TIMEOUT_SECONDS,
    "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
}
# A socket stays in its channel-layer groups (its token's, its channels', its session's) for
# as long as it lives on a token, renewing them when it moves to a fresh one, so a group must
# not expire before the longest token a socket can hold: a chat token's largest `ttl` (seed
# 000's contract: 43,200 minutes, chat.serializers.TTL_MAX) or a voice-session token's. A
# day more covers clock skew between server processes.
LIVE_TOKEN_LIFETIME_MAX = max(timedelta(minutes=43200), ROOMKEY_AGENTS["VOICE_SESSION_TTL"])
CHANNEL_GROUP_EXPIRY = int((LIVE_TOKEN_LIFETIME_MAX + timedelta(days=1)).total_seconds())
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("ROOMKEY_CACHE_PREFIX", default="roomkey"),
            "OPTIONS": REDIS_POOL_OPTIONS,
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            # channels_redis's layer with bounded calls and fast failure (tokens/layers.py).
            "BACKEND": "tokens.layers.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, **REDIS_POOL_OPTIONS}],
                "prefix": env.str("ROOMKEY_CHANNEL_PREFIX", default="roomkey"),
                "group_expiry": CHANNEL_GROUP_EXPIRY,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"group_expiry": CHANNEL_GROUP_EXPIRY},
        }
    }

# --- Rate limits and quotas (README "Limits and quotas") ------------------------------------
# Read at call time through limits.conf.limits_settings; a project's own limits are edited in
# the admin (Limits > Project limits and usage). Rates are "N/period" ("600/min", "20/10s");
# an empty value is no limit.
ROOMKEY_LIMITS = {
    "RATE_LIMITS": env.bool("ROOMKEY_RATE_LIMITS", default=True),
    # Per API key (per chat token on the Fabric paths) and, separately, per client address,
    # for the scopes given (issue, validate, introspect, revoke, chat, api; the others keep
    # their defaults, limits.conf.DEFAULT_RATES): ROOMKEY_RATES="issue=600/min,chat=100/10s".
    "RATES": env.dict("ROOMKEY_RATES", default={}),
    "ADDRESS_RATES": env.dict("ROOMKEY_ADDRESS_RATES", default={}),
    "FAILED_AUTH_RATE": env.str("ROOMKEY_FAILED_AUTH_RATE", default="60/min"),
    "CONNECT_RATE": env.str("ROOMKEY_CONNECT_RATE", default="600/min"),
    "RELAY_REQUEST_RATE": env.str("ROOMKEY_RELAY_REQUEST_RATE", default="200/10s"),
    "VOICE_FRAME_RATE": env.str("ROOMKEY_VOICE_FRAME_RATE", default="100/10s"),
    # Quotas per project (empty: none).
    "MAX_CHAT_SOCKETS": env.str("ROOMKEY_MAX_CHAT_SOCKETS", default="1000"),
    "MAX_VOICE_SOCKETS": env.str("ROOMKEY_MAX_VOICE_SOCKETS", default="100"),
    "MAX_CALL_SESSIONS": env.str("ROOMKEY_MAX_CALL_SESSIONS", default="1000"),
    "MAX_VOICE_SESSION_SECONDS": env.str("ROOMKEY_MAX_VOICE_SESSION_SECONDS", default="3600"),
    "SOCKET_LEASE_SECONDS": env.float("ROOMKEY_SOCKET_LEASE_SECONDS", default=90.0),
    # Counters live in Redis (ROOMKEY_LIMITS_REDIS_URL, by default REDIS_URL) when it is set,
    # else in Django's cache.
    "REDIS_URL": env.str("ROOMKEY_LIMITS_REDIS_URL", default="") or None,
    "KEY_PREFIX": env.str("ROOMKEY_LIMITS_PREFIX", default="rk:limits:"),
}

# Django refuses bodies over this before DRF's parsers see them (DRF reads request.body).
DATA_UPLOAD_MAX_MEMORY_SIZE = ROOMKEY["MAX_BODY_BYTES"]

# --- Production hardening (passes `manage.py check --deploy`) -------------------------------
if env.bool("DJANGO_TRUST_X_FORWARDED_PROTO", default=False):
    # Only behind a proxy that sets this header itself: otherwise a client could claim https.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
}
