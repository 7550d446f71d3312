"""One log line per request (method, token-free path, status, duration, request id), JSON in
production and text in development, and the request id sent back."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest

from tests.support.auth import dynamodb_calls
from web.logging import (
    REQUEST_ID_HEADER,
    JsonFormatter,
    formatter_for,
    install_handler,
    log_format,
    request_id_from,
)

TOKEN = "AbCdEfGhIjKlMnOpQrStUvWxYz012345"


def _request_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "web.requests"]


def test_each_request_logs_one_line_with_its_fields_and_sends_its_id_back(
    app: Any, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="web.requests")

    response = app.test_client().get("/login?next=/w/abc&secret=s3cr3t")

    [record] = _request_lines(caplog)
    assert record.method == "GET" and record.path == "/login" and record.status == 200
    assert isinstance(record.duration_ms, float) and record.duration_ms >= 0
    assert len(record.request_id) == 32
    assert response.headers[REQUEST_ID_HEADER] == record.request_id
    assert "s3cr3t" not in record.getMessage() and "next=" not in record.getMessage()


def test_the_line_counts_the_requests_dynamodb_calls_and_its_cpu(
    app: Any, database: Any, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="web.requests")
    client = app.test_client()

    with dynamodb_calls(database.client) as calls:
        client.get("/healthz")
    client.get("/login")

    health, login = _request_lines(caplog)
    assert health.dynamodb_calls == len(calls) == 1
    assert login.dynamodb_calls == 0
    assert 0 <= login.cpu_ms


def test_an_invite_token_never_reaches_the_request_log(app: Any, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="web.requests")

    app.test_client().get(f"/invite/{TOKEN}")

    [record] = _request_lines(caplog)
    assert record.path == "/invite/[redacted]"
    assert TOKEN not in JsonFormatter().format(record)


def test_a_404_and_a_redirect_are_logged_with_their_status(
    app: Any, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="web.requests")
    client = app.test_client()

    client.get("/no/such/page")
    client.get("/")  # signed out: sent to sign in

    assert [r.status for r in _request_lines(caplog)] == [404, 302]


def test_the_callers_request_id_is_honoured_and_a_bad_one_replaced(app: Any):
    client = app.test_client()

    kept = client.get("/healthz", headers={REQUEST_ID_HEADER: "lb-1234.abc"})
    replaced = client.get("/healthz", headers={REQUEST_ID_HEADER: "bad id <script>" + "x" * 200})

    assert kept.headers[REQUEST_ID_HEADER] == "lb-1234.abc"
    assert "script" not in replaced.headers[REQUEST_ID_HEADER]
    assert len(replaced.headers[REQUEST_ID_HEADER]) == 32


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    ("headers", "environ", "expected"),
    [
        ({"X-Request-Id": "abc-1"}, {}, "abc-1"),
        ({"X-Amzn-Trace-Id": "Self=1-x;Root=1-5759e988-bd862e3fe1be46a994272793"}, {}, None),
        ({}, {"apig_wsgi.request_context": {"requestId": "c6af9ac6-7b61-11e6"}}, None),
    ],
)
def test_the_request_id_comes_from_the_caller_the_trace_or_api_gateway(
    headers: dict[str, str], environ: dict[str, Any], expected: str | None
):
    found = request_id_from(headers, environ)
    if "X-Amzn-Trace-Id" in headers:
        assert found == "1-5759e988-bd862e3fe1be46a994272793"
    elif environ:
        assert found == "c6af9ac6-7b61-11e6"
    else:
        assert found == expected


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "json"),
        ({"APP_ENV": "production"}, "json"),
        ({"APP_ENV": "development"}, "text"),
        ({"APP_ENV": "development", "LOG_FORMAT": "json"}, "json"),
        ({"LOG_FORMAT": "TEXT"}, "text"),
    ],
)
def test_json_in_production_text_in_development_and_log_format_overrides(
    env: dict[str, str], expected: str
):
    assert log_format(env) == expected


@pytest.mark.backend_independent
def test_a_json_line_carries_the_fields_and_the_traceback_on_one_line():
    logger = logging.getLogger("test.json")
    try:
        raise ValueError("boom")
    except ValueError:
        record = logger.makeRecord(
            "test.json",
            logging.ERROR,
            __file__,
            1,
            "failed %s",
            ("here",),
            exc_info=__import__("sys").exc_info(),
            extra={"event": "request", "status": 500, "request_id": "r1", "unrelated": "no"},
        )

    line = formatter_for("json").format(record)

    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "failed here" and parsed["level"] == "ERROR"
    assert parsed["status"] == 500 and parsed["request_id"] == "r1"
    assert "unrelated" not in parsed and "ValueError: boom" in parsed["exception"]


@pytest.mark.backend_independent
def test_the_handler_is_installed_once_and_not_over_someone_elses():
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    for handler in saved:
        root.removeHandler(handler)
    try:
        stream = io.StringIO()
        assert install_handler("json", stream) is not None
        assert install_handler("json", stream) is not None  # replaces its own
        assert len(root.handlers) == 1
        logging.getLogger("test.handler").info("hello", extra={"event": "x"})
        assert json.loads(stream.getvalue())["event"] == "x"
        root.removeHandler(root.handlers[0])
        other = logging.StreamHandler(io.StringIO())
        root.addHandler(other)
        assert install_handler("text") is None, "an operator's handler stays in charge"
        root.removeHandler(other)
    finally:
        for handler in saved:
            root.addHandler(handler)
        root.setLevel(level)


@pytest.mark.backend_independent
def test_on_lambda_the_runtimes_handler_gets_the_json_format(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "teamapp")
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    for handler in saved:
        root.removeHandler(handler)
    runtime = logging.StreamHandler(io.StringIO())  # stands in for Lambda's own handler
    root.addHandler(runtime)
    try:
        assert install_handler("json") is None, "the runtime's handler stays"
        assert isinstance(runtime.formatter, JsonFormatter)
    finally:
        root.removeHandler(runtime)
        for handler in saved:
            root.addHandler(handler)
        root.setLevel(level)
