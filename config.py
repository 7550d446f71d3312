"""Configuration read from the environment when the app is created, never at import."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

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
    region = env.get("AWS_REGION", "").strip() or env.get("AWS_DEFAULT_REGION", "").strip() or None

    return {
        "APP_ENV": app_env,
        "DEBUG": False,
        "TESTING": False,
        "SECRET_KEY": secret or None,
        "DYNAMODB_TABLE": env.get("DYNAMODB_TABLE", "").strip() or DEFAULT_TABLE,
        "DYNAMODB_ENDPOINT": endpoint,
        "AWS_REGION": region,
        # No endpoint and no region: a developer's laptop, so start DynamoDB Local ourselves.
        "DYNAMODB_EMBEDDED": endpoint is None and region is None,
        "PUBLIC_URL": env.get("PUBLIC_URL", "").strip().rstrip("/") or None,
        "SMTP_HOST": env.get("SMTP_HOST", "").strip() or None,
        "SMTP_PORT": _number(env, "SMTP_PORT", 25, (1, 65535), int),
        "SMTP_FROM": env.get("SMTP_FROM", "").strip() or "teamapp@localhost",
        "PASSWORD_HASH_METHOD": "scrypt:32768:8:3",
        "LOGIN_MAX_FAILURES": 10,
        "LOGIN_FAILURE_WINDOW": timedelta(minutes=15),
        "INVITE_LIFETIME": timedelta(days=7),
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
