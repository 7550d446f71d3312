"""Tools for the account and security tests: people, v1 accounts, hand-made session tokens,
Set-Cookie parsing, DynamoDB call counting and fault injection, and a password-hash spy."""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from html import unescape
from typing import Any

import jwt as pyjwt
import pytest
import werkzeug.security
from botocore.exceptions import ClientError
from werkzeug.test import TestResponse

from store import keys
from store.accounts import normalise_email
from store.db import Database, s
from tests.support import mailbox
from tests.support.helpers import PASSWORD, WebClient, hooked, user_id_of

ACCESS_COOKIE = "access_token_cookie"
CSRF_COOKIE = "csrf_access_token"
PREAUTH_COOKIE = "preauth_csrf"
AUTH_COOKIES = (ACCESS_COOKIE, CSRF_COOKIE)
UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
CSRF_VALUE = re.compile(r'(name="csrf_token" value=")[^"]*(")')


# --- the table ---------------------------------------------------------------------------------


def put_account(
    db: Database,
    email: str,
    password_hash: str,
    *,
    name: str = "V1 Person",
    user_id: str | None = None,
) -> str:
    """An account exactly as v1 wrote it (PRODUCT.md: USER#/PROFILE and EMAIL#/EMAIL)."""
    user_id = user_id or uuid.uuid4().hex
    db.client.put_item(
        TableName=db.table,
        Item={
            **keys.user(user_id),
            "email": s(email),
            "name": s(name),
            "passwordHash": s(password_hash),
        },
    )
    db.client.put_item(TableName=db.table, Item={**keys.email(email), "userId": s(user_id)})
    return user_id


def stored_hash(db: Database, user_id: str) -> str:
    row = db.client.get_item(TableName=db.table, Key=keys.user(user_id), ConsistentRead=True)
    return row["Item"]["passwordHash"]["S"]


# --- tokens and cookies ------------------------------------------------------------------------


def mint_token(
    app: Any,
    user_id: str,
    *,
    expires: timedelta = timedelta(minutes=15),
    auth_time: float | None = None,
    sid: str | None = None,
    csrf: str | None = None,
    email: str = "someone@example.com",
    name: str = "Someone",
) -> str:
    """A session token as ``sessions.sign_in`` makes one, with a chosen lifetime and age."""
    from flask_jwt_extended import create_access_token

    sid = sid or str(uuid.uuid4())
    with app.app_context():
        return create_access_token(
            identity=user_id,
            expires_delta=expires,
            additional_claims={
                "jti": sid,
                "sid": sid,
                "csrf": csrf or str(uuid.uuid4()),
                "auth_time": int(time.time() if auth_time is None else auth_time),
                "name": name,
                "email": email,
            },
        )


def claims_of(token: str) -> dict[str, Any]:
    return pyjwt.decode(token, options={"verify_signature": False})


def set_access_cookie(client: Any, token: str, *, domain: str = "localhost") -> None:
    client.set_cookie(ACCESS_COOKIE, token, domain=domain)


@dataclass(frozen=True)
class SetCookie:
    name: str
    value: str
    attributes: dict[str, str]  # lower-case names; flags such as HttpOnly map to ""

    @property
    def cleared(self) -> bool:
        expires = self.attributes.get("expires", "")
        return self.value == "" and ("1970" in expires or self.attributes.get("max-age") == "0")


def set_cookies(response: TestResponse) -> dict[str, SetCookie]:
    """The response's Set-Cookie headers by cookie name (the last one wins, as in a browser)."""
    found: dict[str, SetCookie] = {}
    for header in response.headers.getlist("Set-Cookie"):
        first, *rest = [part.strip() for part in header.split(";")]
        name, _, value = first.partition("=")
        attributes = {}
        for part in rest:
            key, _, val = part.partition("=")
            attributes[key.lower()] = val
        found[name] = SetCookie(name, value, attributes)
    return found


def auth_cookies_set(response: TestResponse) -> list[str]:
    """Names of auth cookies the response sets to a value (not the ones it clears)."""
    return [c.name for c in set_cookies(response).values() if c.name in AUTH_COOKIES and c.value]


def form_csrf_values(page: str, action: str) -> list[str]:
    """The CSRF fields of every form posting to ``action``, in page order."""
    found = []
    for form in re.findall(r"<form\b.*?</form>", page, flags=re.S):
        target = re.search(r'action="([^"]*)"', form)
        field = re.search(r'name="csrf_token" value="([^"]*)"', form)
        if target and field and unescape(target.group(1)).split("?")[0] == action:
            found.append(unescape(field.group(1)))
    return found


def form_csrf(page: str, action: str) -> str:
    """The CSRF field of the (first) form posting to ``action``; a page can hold several."""
    found = form_csrf_values(page, action)
    assert found, f"no form posting to {action} with a CSRF field"
    return found[0]


def mask(body: str, *extra: str) -> str:
    """A page with its per-request values (CSRF tokens, given strings) replaced."""
    body = CSRF_VALUE.sub(r"\1*\2", body)
    for value in extra:
        body = body.replace(value, "*")
    return body


# --- response headers (S34) -------------------------------------------------------------------


def csp_directives(policy: str) -> dict[str, list[str]]:
    found = {}
    for part in policy.split(";"):
        name, *values = part.split()
        found[name] = values
    return found


def assert_html_security_headers(response: Any, *, production: bool) -> None:
    """S34: what every HTML response carries (used by the route sweep too)."""
    headers = response.headers
    policy = csp_directives(headers["Content-Security-Policy"])
    assert "'unsafe-inline'" not in policy.get("script-src", policy.get("default-src", []))
    assert "frame-ancestors" in policy
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] in ("strict-origin-when-cross-origin", "no-referrer")
    assert "X-XSS-Protection" not in headers
    if production:
        assert "max-age=63072000" in headers["Strict-Transport-Security"]
        assert "includeSubDomains" in headers["Strict-Transport-Security"]
    else:
        assert "Strict-Transport-Security" not in headers


# --- DynamoDB calls ----------------------------------------------------------------------------


@contextlib.contextmanager
def dynamodb_calls(client: Any) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Record every DynamoDB operation the client makes, with its parameters."""
    calls: list[tuple[str, dict[str, Any]]] = []

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        calls.append((model.name, dict(params)))  # the API parameters, as the code passed them

    with hooked(client, "provide-client-params.dynamodb", record):
        yield calls


@contextlib.contextmanager
def dynamodb_failure(
    client: Any,
    *,
    code: str = "InternalServerError",
    operations: Iterable[str] | None = None,
    when: Callable[[dict[str, Any]], bool] | None = None,
) -> Iterator[list[str]]:
    """Make the client raise ``ClientError(code)`` for the chosen operations."""
    wanted = set(operations) if operations is not None else None
    failed: list[str] = []

    def fail(model: Any, params: dict[str, Any], **_: Any) -> None:
        if (wanted is None or model.name in wanted) and (when is None or when(params)):
            failed.append(model.name)
            raise ClientError(
                {"Error": {"Code": code, "Message": "injected by the test"}}, model.name
            )

    with hooked(client, "before-call.dynamodb", fail):
        yield failed


# --- password hashing --------------------------------------------------------------------------


def spy_on_hashing(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count key derivations: werkzeug's generate and check both go through _hash_internal."""
    derivations: list[str] = []
    real = werkzeug.security._hash_internal

    def spy(method: str, salt: str, password: str) -> tuple[str, str]:
        result = real(method, salt, password)  # a method werkzeug refuses derives nothing
        derivations.append(method)
        return result

    monkeypatch.setattr(werkzeug.security, "_hash_internal", spy)
    return derivations


# --- people ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """Someone with an account, and the browser they registered in (None for someone a test
    wrote straight into the table)."""

    email: str
    name: str
    user_id: str
    web: WebClient | None
    password: str = PASSWORD


def register(
    app: Any,
    email: str,
    name: str = "Test Person",
    password: str = PASSWORD,
    *,
    confirmed: bool = True,
) -> Person:
    """Create an account through the register page, in a browser of its own (which stays
    signed in); ``confirmed`` opens the confirmation link from the mail too, as the person
    would, so the account can join and invite."""
    web = WebClient(app.test_client())
    response = web.register(email, name, password)
    assert response.status_code == 303, response.get_data(as_text=True)
    address = normalise_email(email)
    if confirmed:
        confirm_from_mail(app, web, address)
    return Person(address, name, user_id_of(app.extensions["db"], address), web, password)


def mark_confirmed(app: Any, address: str) -> None:
    """Confirm an account's address straight in the table, for tests whose mail goes where
    the test cannot read it (an SMTP server, or nowhere)."""
    db = app.extensions["db"]
    db.client.update_item(
        TableName=db.table,
        Key=keys.user(user_id_of(db, normalise_email(address))),
        UpdateExpression="REMOVE emailUnconfirmed",
    )


def confirm_from_mail(app: Any, web: WebClient, address: str) -> None:
    """Open the newest confirmation link mailed to ``address`` and press its button."""
    message = mailbox.last_to(app, address, "Confirm your")
    path = mailbox.path_of_link(message, "/confirm")
    web.get(path)
    response = web.post(path, {}, csrf=form_csrf(web.last_page, path))
    assert response.status_code == 303, response.get_data(as_text=True)


def signed_in(app: Any, person: Person) -> WebClient:
    """A new browser signed in as ``person``."""
    web = WebClient(app.test_client())
    response = web.login(person.email, person.password)
    assert response.status_code == 303, response.get_data(as_text=True)
    return web
