"""Device cookies (OWASP, "Slow Down Online Guessing Attacks with Device Cookies").

A browser that signed in to an account gets a signed cookie naming a random device id bound
to that account's address. Its later attempts on that address are throttled on a backoff of
their own, so an attacker elsewhere who keeps the account's shared backoff busy does not keep
the owner out of their own browser. The cookie says nothing about the address (an id and an
HMAC); it only counts for the address it was signed with.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import Response, current_app, request

from store.accounts import normalise_email

COOKIE = "known_device"
LIFETIME_SECONDS = 365 * 24 * 3600


def _signature(device_id: str, email: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    message = f"device|{device_id}|{normalise_email(email)}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def known_device(email: str) -> str | None:
    """The device id of this browser if it signed in to ``email`` before, else None."""
    value = request.cookies.get(COOKIE, "")
    device_id, _, signature = value.partition(".")
    if not device_id or len(value) > 200:
        return None
    expected = _signature(device_id, email)
    return device_id if hmac.compare_digest(expected.encode(), signature.encode()) else None


def remember_device(response: Response, email: str) -> None:
    """After a successful sign-in: keep this browser's id, or give it one, for ``email``."""
    device_id = known_device(email) or secrets.token_urlsafe(16)
    response.set_cookie(
        COOKIE,
        f"{device_id}.{_signature(device_id, email)}",
        max_age=LIFETIME_SECONDS,
        httponly=True,
        samesite="Lax",
        secure=current_app.config["JWT_COOKIE_SECURE"],
    )
