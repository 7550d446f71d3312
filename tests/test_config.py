"""Configuration from the environment, the secret-key policy, and the DynamoDB client's budget."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

import config
from config import ConfigError, load_config
from store.db import build_client

ROOT = Path(__file__).resolve().parent.parent
GOOD_SECRET = "s" * 48
# Outside development a region (or an endpoint) is required: tests/test_config_region.py.
REGION = "eu-west-1"


# --- load_config -------------------------------------------------------------------------------


def test_production_is_the_default_and_locks_everything_down():
    settings = load_config({"SECRET_KEY": GOOD_SECRET, "AWS_REGION": REGION})
    assert settings["APP_ENV"] == "production"
    assert settings["DEBUG"] is False and settings["TESTING"] is False
    assert settings["JWT_COOKIE_SECURE"] is True and settings["SESSION_COOKIE_SECURE"] is True
    assert settings["JWT_COOKIE_SAMESITE"] == "Lax"
    assert settings["JWT_TOKEN_LOCATION"] == ["cookies"]
    assert settings["JWT_COOKIE_CSRF_PROTECT"] is True and settings["JWT_CSRF_CHECK_FORM"] is True
    assert settings["JWT_ACCESS_CSRF_FIELD_NAME"] == "csrf_token"
    assert settings["JWT_DECODE_ALGORITHMS"] == ["HS256"] == [settings["JWT_ALGORITHM"]]
    assert settings["MAX_CONTENT_LENGTH"] <= 1024 * 1024
    assert settings["PASSWORD_HASH_METHOD"] == "scrypt:32768:8:3"
    assert settings["PREFERRED_URL_SCHEME"] == "https"


@pytest.mark.parametrize("app_env", ["staging", "prod", "Development", "dev", " "])
def test_anything_but_development_is_production(app_env: str):
    settings = load_config({"APP_ENV": app_env, "SECRET_KEY": GOOD_SECRET, "AWS_REGION": REGION})
    assert settings["JWT_COOKIE_SECURE"] is True
    with pytest.raises(ConfigError):
        load_config({"APP_ENV": app_env})


def test_development_may_run_without_a_secret_and_without_secure_cookies():
    settings = load_config({"APP_ENV": "development"})
    assert settings["SECRET_KEY"] is None
    assert settings["JWT_COOKIE_SECURE"] is False


def test_a_missing_secret_in_production_is_refused_with_advice():
    with pytest.raises(ConfigError) as refused:
        load_config({"APP_ENV": "production"})
    message = str(refused.value)
    assert "SECRET_KEY" in message and "\n" not in message
    assert "secrets" in message  # says how to make one


@pytest.mark.parametrize("secret", ["short", "x" * 10, "y" * (config.MIN_SECRET_BYTES - 1)])
def test_a_short_secret_is_refused_in_production(secret: str):
    """The decision: a key shorter than HS256's output (32 bytes) is refused, not warned
    about (OWASP JWT cheat sheet); development accepts anything."""
    with pytest.raises(ConfigError, match="too short"):
        load_config({"APP_ENV": "production", "SECRET_KEY": secret})
    assert load_config({"APP_ENV": "development", "SECRET_KEY": secret})["SECRET_KEY"] == secret
    assert load_config({"SECRET_KEY": "z" * config.MIN_SECRET_BYTES, "AWS_REGION": REGION})


def test_the_environment_names_of_the_contract_are_read():
    settings = load_config(
        {
            "SECRET_KEY": GOOD_SECRET,
            "DYNAMODB_TABLE": "team-prod",
            "DYNAMODB_ENDPOINT": "http://dynamo:8000",
            "AWS_REGION": "eu-west-1",
        }
    )
    assert settings["DYNAMODB_TABLE"] == "team-prod"
    assert settings["DYNAMODB_ENDPOINT"] == "http://dynamo:8000"
    assert settings["AWS_REGION"] == "eu-west-1"
    assert settings["DYNAMODB_EMBEDDED"] is False
    laptop = load_config({"APP_ENV": "development"})
    assert laptop["DYNAMODB_EMBEDDED"] is True and laptop["DYNAMODB_TABLE"] == "teamapp"
    assert (
        load_config({"APP_ENV": "development", "AWS_REGION": "eu-west-1"})["DYNAMODB_EMBEDDED"]
        is False
    )


# --- S7: the factory refuses to start -----------------------------------------------------------


def _production_env(**extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("SECRET_KEY", "APP_ENV", "DYNAMODB_ENDPOINT", "AWS_REGION")
    }
    env.update({"APP_ENV": "production", "AWS_DEFAULT_REGION": "us-east-1", **extra})
    return env


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("MIGRATION_WRITERS", "0", "out of range: use 1 to 16"),
        ("MIGRATION_WRITERS", "4.5", "not a whole number"),
        ("MIGRATION_WRITERS", "99", "out of range"),
        ("MIGRATION_LEASE_SECONDS", "abc", "not a number"),
        ("MIGRATION_LEASE_SECONDS", "0.5", "out of range: use 1 to 3600"),
        ("MIGRATION_LEASE_SECONDS", "nan", "out of range"),
        ("MIGRATION_BUDGET_SECONDS", "-1", "out of range"),
        ("MIGRATION_BUDGET_SECONDS", "inf", "out of range"),
        ("MIGRATION_SLICE_SECONDS", "0", "out of range"),
        ("MIGRATION_SLICE_SECONDS", "20", "at most half of MIGRATION_LEASE_SECONDS=30"),
        ("MIGRATION_MODE", "fast", "use one of auto, thread, request"),
        ("SMTP_PORT", "smtp", "not a whole number"),
    ],
)
def test_out_of_bounds_settings_stop_the_start_naming_the_setting(name: str, value: str, says: str):
    with pytest.raises(ConfigError) as refused:
        load_config({"APP_ENV": "development", name: value})
    message = str(refused.value)
    assert message.startswith(f"{name}=") and says in message and "\n" not in message


def test_migration_settings_within_bounds_are_read_as_numbers():
    settings = load_config(
        {
            "APP_ENV": "development",
            "MIGRATION_WRITERS": "1",
            "MIGRATION_LEASE_SECONDS": "2",
            "MIGRATION_BUDGET_SECONDS": "1.5",
            "MIGRATION_SLICE_SECONDS": "1",
            "MIGRATION_MODE": " Request ",
        }
    )
    assert settings["MIGRATION_WRITERS"] == 1
    assert settings["MIGRATION_LEASE_SECONDS"] == 2.0
    assert settings["MIGRATION_BUDGET_SECONDS"] == 1.5
    assert settings["MIGRATION_SLICE_SECONDS"] == 1.0
    assert settings["MIGRATION_MODE"] == "request"
    defaults = load_config({"APP_ENV": "development"})
    assert (defaults["MIGRATION_WRITERS"], defaults["MIGRATION_MODE"]) == (4, "auto")


def test_create_app_with_zero_writers_exits_before_serving(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    """MIGRATION_WRITERS=0 once wrote a permanent flag saying 0 items were copied."""
    from app import create_app

    monkeypatch.setenv("APP_ENV", "development")
    monkeypatch.setenv("MIGRATION_WRITERS", "0")

    with pytest.raises(SystemExit) as stopped:
        create_app()

    assert stopped.value.code == 4
    assert "MIGRATION_WRITERS=0" in capsys.readouterr().err


def test_create_app_without_a_secret_in_production_exits_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    from app import create_app

    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)

    with pytest.raises(SystemExit) as stopped:
        create_app()

    assert stopped.value.code not in (0, None)
    printed = (capsys.readouterr().err + str(stopped.value.code)).strip()
    lines = [line for line in printed.splitlines() if "SECRET_KEY" in line]
    assert len(lines) == 1


def test_create_app_with_a_short_secret_in_production_exits(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    from app import create_app

    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "0123456789")

    with pytest.raises(SystemExit) as stopped:
        create_app()

    assert stopped.value.code not in (0, None)
    assert "too short" in capsys.readouterr().err + str(stopped.value.code)


def test_the_flask_command_without_a_secret_in_production_fails_with_the_message():
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "routes"],
        cwd=ROOT,
        env=_production_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
    assert "Traceback" not in result.stderr
    assert "SECRET_KEY" not in result.stdout


def test_importing_the_app_does_no_work():
    """The contract: app.py does no work at import (no config, no client, no exit)."""
    result = subprocess.run(
        [sys.executable, "-c", "import app; print(app.create_app.__name__)"],
        cwd=ROOT,
        env=_production_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "create_app"


# --- R6: the DynamoDB client's retry mode and time budget ----------------------------------------


def test_the_app_builds_its_client_with_standard_retries_and_timeouts(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
):
    from app import create_app

    monkeypatch.setenv("DYNAMODB_ENDPOINT", "http://127.0.0.1:9")
    app = create_app({"TESTING": True})
    client = app.extensions["db"].client

    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 3}
    assert client.meta.config.connect_timeout == app.config["DYNAMODB_CONNECT_TIMEOUT"] <= 5
    assert client.meta.config.read_timeout == app.config["DYNAMODB_READ_TIMEOUT"] <= 10
    assert client.meta.endpoint_url == "http://127.0.0.1:9"


class _Body:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Any:
        yield self.body


def _answer(status: int, payload: dict[str, Any]) -> AWSResponse:
    return AWSResponse(
        "http://127.0.0.1:9/",
        status,
        {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "test"},
        _Body(json.dumps(payload).encode()),
    )


THROTTLED = {"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException", "message": "slow"}


@pytest.fixture
def no_sdk_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """botocore's endpoint sleeps between attempts; record the pauses instead of waiting."""
    import botocore.endpoint

    pauses: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=pauses.append))
    return pauses


def test_two_throttles_then_success_take_three_attempts(aws_env: None, no_sdk_sleep: list):
    client = build_client(endpoint="http://127.0.0.1:9", region="us-east-1")
    answers = [_answer(400, THROTTLED), _answer(400, THROTTLED), _answer(200, {"TableNames": []})]
    sent: list[str] = []

    def fake_server(request: Any, **_: Any) -> AWSResponse:
        sent.append(request.headers["X-Amz-Target"].decode())
        return answers[len(sent) - 1]

    client.meta.events.register("before-send.dynamodb", fake_server)
    response = client.list_tables()

    assert response["TableNames"] == []
    assert response["ResponseMetadata"]["RetryAttempts"] == 2
    assert sent == ["DynamoDB_20120810.ListTables"] * 3
    assert len(no_sdk_sleep) == 2 and all(0 <= pause <= 20 for pause in no_sdk_sleep)


def test_constant_throttling_gives_up_after_three_attempts(aws_env: None, no_sdk_sleep: list):
    from botocore.exceptions import ClientError

    client = build_client(endpoint="http://127.0.0.1:9", region="us-east-1")
    sent: list[int] = []

    def fake_server(request: Any, **_: Any) -> AWSResponse:
        sent.append(1)
        return _answer(400, THROTTLED)

    client.meta.events.register("before-send.dynamodb", fake_server)
    with pytest.raises(ClientError) as refused:
        client.list_tables()

    assert refused.value.response["Error"]["Code"] == "ThrottlingException"
    assert len(sent) == 3
