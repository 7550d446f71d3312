"""The AWS Lambda entry point, driven by recorded API Gateway and function URL events: sign
in, the preparing page while the migration copies in request slices, and the items page."""

from __future__ import annotations

import base64
import contextlib
from html import unescape
from typing import Any

import pytest

import lambda_app
from blueprints.migration import runner
from tests.support.helpers import CSRF_FIELD, PASSWORD, hooked
from tests.support.lambda_events import KINDS, Answer, GatewayBrowser
from tests.support.migration import v1_rows


@pytest.fixture
def on_lambda(app: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The app as Lambda runs it: the runtime's variable set, migration mode ``auto``."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "teamapp")
    app.config["MIGRATION_MODE"] = "auto"
    return app


def _csrf(answer: Answer) -> str:
    match = CSRF_FIELD.search(answer.text)
    assert match, f"no form with a CSRF field ({answer.status})"
    return unescape(match.group(1))


def _sign_in(browser: GatewayBrowser, email: str) -> Answer:
    page = browser.get("/login")
    assert page.status == 200 and page.header("Content-Type").startswith("text/html")
    assert page.raw["isBase64Encoded"] is False, "text answers stay text"
    fields = {"email": email, "password": PASSWORD, "csrf_token": _csrf(page)}
    return browser.post("/login", fields)


def _small_pages(params: dict[str, Any], **_: Any) -> None:
    if "FilterExpression" in params and "Select" not in params:  # the copy's v1 item scan
        params["Limit"] = 20


@pytest.mark.parametrize("kind", KINDS)
def test_sign_in_the_preparing_page_and_the_items_page_through_lambda(
    on_lambda: Any, seed: Any, monkeypatch: pytest.MonkeyPatch, kind: str
):
    # Slices as short as they go (one verified page each), pages of 20 items and one
    # writer, so 45 items take three requests: the preparing page shows on every backend.
    on_lambda.config.update(MIGRATION_SLICE_SECONDS=0, MIGRATION_WRITERS=1)
    monkeypatch.setattr(runner, "CLAIM_POLL_SECONDS", 0.0)
    accounts = seed(items=45, settings=2, members=2)
    client = on_lambda.extensions["db"].client
    stack = contextlib.ExitStack()
    stack.enter_context(hooked(client, "provide-client-params.dynamodb.Scan", _small_pages))
    browser = GatewayBrowser(kind, lambda_app.make_handler(on_lambda))

    signed_in = _sign_in(browser, accounts[0].email)

    assert signed_in.status == 303, signed_in.text[:300]
    assert {"access_token_cookie", "csrf_access_token"} <= set(browser.cookies)
    if kind == "rest-api-v1":
        assert "cookies" not in signed_in.raw and "multiValueHeaders" in signed_in.raw
        set_cookie = [v for k, v in signed_in.raw["multiValueHeaders"].items() if k == "Set-Cookie"]
        assert len(set_cookie[0]) >= 2, "1.0 answers keep every Set-Cookie as a multi-value"
    else:
        assert len(signed_in.raw["cookies"]) >= 2, "2.0 answers carry cookies in their list"
        assert not [k for k in signed_in.raw.get("headers", {}) if k.lower() == "set-cookie"]

    gated = browser.get(signed_in.location)
    assert gated.status == 303 and "/preparing?" in gated.location, gated.location
    preparing = browser.get(gated.location)
    assert preparing.status == 200 and "Preparing" in preparing.text
    assert runner.state(on_lambda).mode == "request", "no background thread on Lambda"
    assert runner.state(on_lambda).thread is None

    answer = preparing
    for _ in range(20):  # each load copies one slice
        answer = browser.get(gated.location)
        if answer.status != 200:
            break
    assert answer.status in (302, 303), answer.text[:300]
    home = browser.get(answer.location)
    assert home.status in (302, 303)
    items = browser.get(home.location)

    stack.close()
    assert items.status == 200, items.text[:300]
    titles = {row["title"]["S"] for row in v1_rows(on_lambda.extensions["db"])["items"]}
    assert any(title in unescape(items.text) for title in titles)
    assert items.header("X-Request-Id"), "the request id goes back through the gateway"


@pytest.mark.parametrize("kind", KINDS)
def test_binary_answers_are_base64_and_text_stays_text(on_lambda: Any, kind: str):
    pixel = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
    )

    @on_lambda.get("/test-only/pixel.png")
    def pixel_png() -> Any:
        return on_lambda.response_class(pixel, mimetype="image/png")

    browser = GatewayBrowser(kind, lambda_app.make_handler(on_lambda))

    image = browser.get("/test-only/pixel.png")
    style = browser.get("/static/style.css")

    assert image.raw["isBase64Encoded"] is True and image.body == pixel
    assert style.raw["isBase64Encoded"] is False and "{" in style.text


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    ("context", "path", "prefix"),
    [
        ({"path": "/Prod/login", "stage": "Prod"}, "/login", "/Prod"),  # execute-api URL
        ({"path": "/login", "stage": "Prod"}, "/login", ""),  # a custom domain
        ({"http": {}, "stage": "$default"}, "/login", ""),
        ({"http": {}, "stage": "beta"}, "/beta/login", "/beta"),
    ],
)
def test_the_stage_prefix_becomes_the_script_name(context: dict[str, Any], path: str, prefix: str):
    environ = {"apig_wsgi.request_context": context, "PATH_INFO": path}
    assert lambda_app.stage_prefix(environ) == prefix
