"""Error pages that leak nothing, request size limits, logs without secrets, and /healthz."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from tests.support.app import make_app
from tests.support.auth import (
    ACCESS_COOKIE,
    Person,
    dynamodb_failure,
    set_cookies,
    signed_in,
    spy_on_hashing,
)
from tests.support.helpers import PASSWORD, WebClient, scan_all

LEAKS = ("Traceback", "ClientError", "botocore", "injected by the test", 'File "', "Werkzeug")
JWT_PATTERN = re.compile(r"eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+")


def _assert_friendly_page(response: Any, status: int) -> str:
    page = response.get_data(as_text=True)
    assert response.status_code == status
    assert response.mimetype == "text/html"
    assert f"Error {status}" in page
    for leak in LEAKS:
        assert leak not in page, leak
    return page


def test_an_unknown_page_is_a_friendly_404(web: WebClient):
    _assert_friendly_page(web.get("/no/such/page"), 404)


def test_a_wrong_method_is_a_friendly_405(web: WebClient):
    response = web.get("/logout")
    _assert_friendly_page(response, 405)
    assert "POST" in response.headers["Allow"]


# --- S35: size limits --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/register", "/login", "/logout", "/no-such-page"])
def test_a_two_megabyte_form_gets_a_friendly_413_and_nothing_is_hashed_or_saved(
    app: Any, alice: Person, database: Any, path: str, monkeypatch: pytest.MonkeyPatch
):
    web = signed_in(app, alice) if path == "/logout" else WebClient(app.test_client())
    token = web.csrf_from("/register")
    before = scan_all(database)
    derivations = spy_on_hashing(monkeypatch)

    response = web.client.post(
        path,
        data={"csrf_token": token, "email": alice.email, "password": "p" * 2_000_000},
    )

    if path == "/no-such-page":
        assert response.status_code in (404, 413)
        return
    page = _assert_friendly_page(response, 413)
    assert "larger than this site accepts" in page
    assert derivations == []
    assert scan_all(database) == before


def test_many_small_fields_are_refused_too(app: Any, database: Any):
    web = WebClient(app.test_client())
    token = web.csrf_from("/register")
    fields = {f"f{number}": "x" for number in range(app.config["MAX_FORM_PARTS"] + 10)}
    response = web.client.post(
        "/register", data={"csrf_token": token, **fields}, content_type="multipart/form-data"
    )
    assert response.status_code == 413
    assert scan_all(database) == []


# --- S36: failures inside a view ---------------------------------------------------------------


def test_a_database_failure_in_a_view_is_a_500_page_without_details(
    app: Any, alice: Person, database: Any, caplog: pytest.LogCaptureFixture
):
    web = WebClient(app.test_client())
    token = web.csrf_from("/login")

    with dynamodb_failure(database.client) as failed:
        response = web.post(
            "/login", {"email": alice.email, "password": alice.password}, csrf=token
        )

    assert failed
    page = _assert_friendly_page(response, 500)
    assert "Please try again" in page
    assert auth_cookies(response) == []
    assert any(record.levelno >= logging.ERROR for record in caplog.records)  # logged for us


def test_an_unreachable_database_while_signed_in_is_a_500_page(
    app: Any, alice: Person, database: Any
):
    web = signed_in(app, alice)

    def unreachable(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="http://dynamodb.invalid")

    database.client.meta.events.register("before-call.dynamodb", unreachable)
    try:
        response = web.get("/")
    finally:
        database.client.meta.events.unregister("before-call.dynamodb", unreachable)

    _assert_friendly_page(response, 500)
    assert "dynamodb.invalid" not in response.get_data(as_text=True)


def auth_cookies(response: Any) -> list[str]:
    return [name for name, cookie in set_cookies(response).items() if cookie.value]


def test_logs_never_hold_a_password_or_a_session_token(
    app: Any, database: Any, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    web = WebClient(app.test_client())
    web.register("alice@x.com", password=PASSWORD)
    web.logout()
    web.login("alice@x.com", "a wrong password, typed by mistake")
    web.login("alice@x.com", PASSWORD)
    token = web.cookie(ACCESS_COOKIE)
    web.get("/")
    with dynamodb_failure(database.client):
        web.get("/")  # an error is logged with its traceback
    web.logout()

    logged = caplog.text + "".join(str(record.args) for record in caplog.records)
    assert token and token not in logged
    assert not JWT_PATTERN.search(logged)
    assert PASSWORD not in logged
    assert "a wrong password, typed by mistake" not in logged


# --- /healthz ----------------------------------------------------------------------------------


def test_healthz_answers_json_without_signing_in(web: WebClient):
    response = web.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "table": "ok", "migration": "none"}


def test_healthz_is_503_json_when_the_table_is_missing(ddb_client: Any, table_name: str):
    app = make_app(ddb_client, "no-such-table-" + table_name)
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["status"] == "unavailable"


def test_healthz_is_503_json_when_dynamodb_cannot_be_reached(app: Any, database: Any):
    def unreachable(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="http://dynamodb.invalid")

    database.client.meta.events.register("before-call.dynamodb", unreachable)
    try:
        response = app.test_client().get("/healthz")
    finally:
        database.client.meta.events.unregister("before-call.dynamodb", unreachable)

    assert response.status_code == 503
    assert response.get_json()["status"] == "unavailable"
    assert "dynamodb.invalid" not in response.get_data(as_text=True)


def test_a_404_with_our_own_message_shows_it_and_the_stock_one_does_not(app, web):
    from flask import abort

    @app.get("/test-only/gone")
    def gone():
        abort(404, description="That item was deleted.")

    assert "That item was deleted." in web.text(web.get("/test-only/gone"))
    stock = web.text(web.get("/no-such-page"))
    assert "Page not found" in stock and "requested URL was not found" not in stock
