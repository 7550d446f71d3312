"""Configuration read from the environment when the app is created, never at import."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import botocore.session
from botocore.exceptions import BotoCoreError

DEFAULT_TABLE = "teamapp"
# HS256 wants a key at least as long as its output (OWASP JWT cheat sheet): 256 bits.
MIN_SECRET_BYTES = 32


# Bounds of the migration's settings. A lease under a second cannot survive one slow request
# and over an hour leaves people waiting that long after a crash; more writers than the
# client's connection pool (16) only queue; a slice must end well inside the lease, or the
# next request would see a live holder that is in fact done.
MIGRATION_MODES = ("auto", "thread", "request")
LEASE_BOUNDS = (1.0, 3600.0)
SYNC_BOUNDS = (0, 60)
BUDGET_BOUNDS = (0.1, 300.0)
WRITER_BOUNDS = (1, 16)
SLICE_BOUNDS = (0.1, 60.0)


LOG_FORMATS = ("json", "text")
METRICS_KINDS = ("off", "emf")


class ConfigError(RuntimeError):
    """The environment does not describe a runnable app; the message says how to fix it."""


def _number(
    env: Mapping[str, str], name: str, default: float, bounds: tuple[float, float], kind: type
) -> Any:
    """A numeric setting within ``bounds``; anything else stops the start, naming the fix."""
    raw = env.get(name, "").strip()
    if not raw:
        return kind(default)
    low, high = bounds
    try:
        value = kind(raw)
    except ValueError:
        noun = "a whole number" if kind is int else "a number"
        raise ConfigError(f"{name}={raw!r} is not {noun} (use {low:g} to {high:g})") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={raw} is out of range: use {low:g} to {high:g}")
    return value


def _migration_settings(env: Mapping[str, str]) -> dict[str, Any]:
    lease = _number(env, "MIGRATION_LEASE_SECONDS", 30, LEASE_BOUNDS, float)
    slice_seconds = _number(env, "MIGRATION_SLICE_SECONDS", 1.0, SLICE_BOUNDS, float)
    if slice_seconds > lease / 2:
        raise ConfigError(
            f"MIGRATION_SLICE_SECONDS={slice_seconds:g} must be at most half of "
            f"MIGRATION_LEASE_SECONDS={lease:g}"
        )
    mode = env.get("MIGRATION_MODE", "").strip().lower() or "auto"
    if mode not in MIGRATION_MODES:
        raise ConfigError(f"MIGRATION_MODE={mode!r}: use one of {', '.join(MIGRATION_MODES)}")
    return {
        "MIGRATION_LEASE_SECONDS": lease,
        "MIGRATION_BUDGET_SECONDS": _number(
            env, "MIGRATION_BUDGET_SECONDS", 8, BUDGET_BOUNDS, float
        ),
        "MIGRATION_WRITERS": _number(env, "MIGRATION_WRITERS", 4, WRITER_BOUNDS, int),
        "MIGRATION_SLICE_SECONDS": slice_seconds,
        "MIGRATION_MODE": mode,
        # How often late v1 writes are applied by themselves after the flag; 0 turns it off.
        "MIGRATION_SYNC_SECONDS": _number(env, "MIGRATION_SYNC_SECONDS", 2, SYNC_BOUNDS, float),
    }


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")

# Invites sent per person and per workspace in an hour and in a day, and pending invites a
# workspace may hold (store/invite_limits.py): generous for a team, tight for a spammer.
INVITE_LIMITS: dict[str, Any] = {
    "INVITE_LIMITS_PER_PERSON": ((3600, 20), (86400, 50)),
    "INVITE_LIMITS_PER_WORKSPACE": ((3600, 50), (86400, 200)),
    "INVITE_MAX_PENDING": 100,
}


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE or raw in _FALSE:
        return raw in _TRUE
    raise ConfigError(f"{name}={raw!r}: use 1 or 0 (true/false, yes/no, on/off)")


def _mail_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """SMTP: STARTTLS is on unless switched off (a relay on this machine may not offer it);
    a login is only ever sent over it."""
    host = env.get("SMTP_HOST", "").strip() or None
    starttls = _flag(env, "SMTP_STARTTLS", True)
    username = env.get("SMTP_USERNAME", "").strip() or None
    password = env.get("SMTP_PASSWORD", "") or None
    if username and not starttls:
        raise ConfigError("SMTP_USERNAME needs SMTP_STARTTLS on: a login would travel in clear")
    if password and not username:
        raise ConfigError("SMTP_PASSWORD is set without SMTP_USERNAME")
    return {
        "SMTP_HOST": host,
        "SMTP_PORT": _number(env, "SMTP_PORT", 25, (1, 65535), int),
        "SMTP_FROM": env.get("SMTP_FROM", "").strip() or "teamapp@localhost",
        "SMTP_STARTTLS": starttls,
        "SMTP_USERNAME": username,
        "SMTP_PASSWORD": password,
        "SMTP_CA_FILE": env.get("SMTP_CA_FILE", "").strip() or None,
        "SMTP_MAX_ATTEMPTS": 4,
        "SMTP_RETRY_SECONDS": 1.0,
    }


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(name, "").strip().lower() or default
    if value not in choices:
        raise ConfigError(f"{name}={value!r}: use one of {', '.join(choices)}")
    return value


def _region(env: Mapping[str, str], development: bool) -> str | None:
    """The AWS region the SDK would use, or None.

    Outside development this is boto3's own chain (AWS_REGION, AWS_DEFAULT_REGION, then the
    profile's ``region`` in the shared config file), so a host configured the usual way is
    never mistaken for a laptop. In development only the environment counts: a developer's
    ``~/.aws/config`` should not point ``make run`` at a real account.
    """
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if value := env.get(name, "").strip():
            return value
    if development:
        return None
    session = botocore.session.Session()
    # Read from ``env`` (not os.environ) like the names above, so the caller's mapping rules.
    session.set_config_variable(
        "config_file", env.get("AWS_CONFIG_FILE", "").strip() or "~/.aws/config"
    )
    profile = env.get("AWS_PROFILE", "").strip() or env.get("AWS_DEFAULT_PROFILE", "").strip()
    try:
        profiles = session.full_config.get("profiles", {})
    except BotoCoreError as exc:
        raise ConfigError(f"the AWS config file could not be read: {exc}") from None
    region = str(profiles.get(profile or "default", {}).get("region", "")).strip()
    return region or None


def load_config(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Build the Flask config from environment variables (see the README's table)."""
    env = os.environ if environ is None else environ
    app_env = env.get("APP_ENV", "production").strip() or "production"
    development = app_env == "development"

    secret = env.get("SECRET_KEY", "")
    if not secret:
        if not development:
            raise ConfigError(
                "SECRET_KEY is not set: production needs a random secret of at least "
                f"{MIN_SECRET_BYTES} bytes, e.g. python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))'"
            )
    elif len(secret.encode()) < MIN_SECRET_BYTES and not development:
        raise ConfigError(
            f"SECRET_KEY is too short ({len(secret.encode())} bytes): use at least "
            f"{MIN_SECRET_BYTES} random bytes"
        )

    endpoint = env.get("DYNAMODB_ENDPOINT", "").strip() or None
    region = _region(env, development)
    if endpoint is None and region is None and not development:
        raise ConfigError(
            "no DynamoDB to use: set AWS_REGION (or a region for the profile in "
            "~/.aws/config), or DYNAMODB_ENDPOINT; only APP_ENV=development starts the "
            "embedded DynamoDB Local"
        )

    return {
        "APP_ENV": app_env,
        "DEBUG": False,
        "TESTING": False,
        "SECRET_KEY": secret or None,
        "DYNAMODB_TABLE": env.get("DYNAMODB_TABLE", "").strip() or DEFAULT_TABLE,
        "DYNAMODB_ENDPOINT": endpoint,
        "AWS_REGION": region,
        # Development without an endpoint or a region in the environment: a developer's
        # laptop, so start DynamoDB Local ourselves (production refused this above).
        "DYNAMODB_EMBEDDED": endpoint is None and region is None,
        "PUBLIC_URL": env.get("PUBLIC_URL", "").strip().rstrip("/") or None,
        **_mail_settings(env),
        **INVITE_LIMITS,
        # Logs: readable text in development, one JSON object per line elsewhere.
        "LOG_FORMAT": _choice(env, "LOG_FORMAT", "text" if development else "json", LOG_FORMATS),
        # Request and migration metrics as CloudWatch's embedded metric format (web/metrics.py).
        "METRICS": _choice(env, "METRICS", "off", METRICS_KINDS),
        # Without SMTP_HOST, mail is written here (None: instance/mail; see web/outbox.py).
        "MAIL_OUTBOX": env.get("MAIL_OUTBOX", "").strip() or None,
        "PASSWORD_HASH_METHOD": "scrypt:32768:8:3",
        # Sign-in throttling (store/signin_limits.py): free consecutive failures per address,
        # then a wait doubling from 1 s up to 5 minutes; 50 failures per client address per
        # 15 minutes.
        "LOGIN_FREE_FAILURES": 3,
        "LOGIN_MAX_DELAY": timedelta(minutes=5),
        "LOGIN_CLIENT_MAX_FAILURES": 50,
        "LOGIN_CLIENT_WINDOW": timedelta(minutes=15),
        # How many reverse proxies in front of the app set X-Forwarded-For (web/security.py);
        # 0 trusts none, so the client address is the connection's.
        # Wrong current passwords on /account, per account: a stolen session cannot guess.
        "CURRENT_PASSWORD_MAX_FAILURES": 10,
        "CURRENT_PASSWORD_WINDOW": timedelta(minutes=15),
        "TRUSTED_PROXIES": _number(env, "TRUSTED_PROXIES", 0, (0, 5), int),
        "INVITE_LIFETIME": timedelta(days=7),
        # Mailed links (OWASP Forgot Password: short-lived, single use) and how often a person
        # may ask for one; store/limits.py counts per account or address across processes.
        "CONFIRM_LIFETIME": timedelta(days=3),
        "RESET_LIFETIME": timedelta(hours=1),
        "EMAIL_CHANGE_LIFETIME": timedelta(days=1),
        "MAIL_LINK_LIMIT": 3,
        "MAIL_LINK_WINDOW": timedelta(minutes=15),
        # Requests: an item holds at most 400 KB in DynamoDB, so a form bigger than 1 MB is
        # never legitimate.
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "MAX_FORM_MEMORY_SIZE": 512 * 1024,
        "MAX_FORM_PARTS": 200,
        # DynamoDB client: the SDK's legacy mode retries 10 times over ~25 s under throttling,
        # which would stall a page; three attempts and short timeouts keep a page responsive.
        "DYNAMODB_MAX_ATTEMPTS": 3,
        "DYNAMODB_CONNECT_TIMEOUT": 2.0,
        "DYNAMODB_READ_TIMEOUT": 5.0,
        # Migration lease, budget, writers and how it runs (store/migration/__init__.py).
        **_migration_settings(env),
        # Sessions.
        "JWT_TOKEN_LOCATION": ["cookies"],
        "JWT_ACCESS_TOKEN_EXPIRES": timedelta(minutes=15),
        "JWT_REFRESH_WITHIN": timedelta(minutes=10),
        "JWT_SESSION_MAX_AGE": timedelta(hours=12),
        "JWT_COOKIE_SECURE": not development,
        "JWT_COOKIE_SAMESITE": "Lax",
        "JWT_COOKIE_CSRF_PROTECT": True,
        "JWT_CSRF_CHECK_FORM": True,
        "JWT_ACCESS_CSRF_FIELD_NAME": "csrf_token",
        "JWT_SESSION_COOKIE": True,
        "JWT_ALGORITHM": "HS256",
        "JWT_DECODE_ALGORITHMS": ["HS256"],
        "SESSION_COOKIE_SECURE": not development,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "PREFERRED_URL_SCHEME": "http" if development else "https",
    }
