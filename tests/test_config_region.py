"""Outside development the app needs a DynamoDB to talk to: an endpoint, or a region boto3
resolves (environment, then the profile in the shared config file); never the embedded one."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import ConfigError, load_config

SECRET = "s" * 48


@pytest.fixture
def aws_config(tmp_path: Path) -> Path:
    path = tmp_path / "aws-config"
    path.write_text(
        "[default]\nregion = eu-central-1\n\n[profile ops]\nregion = ap-southeast-2\n"
        "\n[profile bare]\noutput = json\n"
    )
    return path


def production(**extra: str) -> dict[str, str]:
    return {"APP_ENV": "production", "SECRET_KEY": SECRET, **extra}


def test_a_region_only_in_the_shared_config_file_is_honoured(aws_config: Path):
    settings = load_config(production(AWS_CONFIG_FILE=str(aws_config)))
    assert settings["AWS_REGION"] == "eu-central-1"
    assert settings["DYNAMODB_EMBEDDED"] is False


def test_the_profile_chosen_by_aws_profile_gives_the_region(aws_config: Path):
    settings = load_config(production(AWS_CONFIG_FILE=str(aws_config), AWS_PROFILE="ops"))
    assert settings["AWS_REGION"] == "ap-southeast-2"


def test_the_environment_wins_over_the_config_file(aws_config: Path):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        settings = load_config(production(AWS_CONFIG_FILE=str(aws_config), **{name: "us-west-2"}))
        assert settings["AWS_REGION"] == "us-west-2"


@pytest.mark.parametrize("profile", ["bare", "missing"])
def test_production_without_endpoint_or_region_refuses_to_start(aws_config: Path, profile: str):
    with pytest.raises(ConfigError) as refused:
        load_config(production(AWS_CONFIG_FILE=str(aws_config), AWS_PROFILE=profile))
    message = str(refused.value)
    assert "AWS_REGION" in message and "DYNAMODB_ENDPOINT" in message and "\n" not in message


def test_production_with_no_config_file_at_all_refuses(tmp_path: Path):
    with pytest.raises(ConfigError, match="no DynamoDB to use"):
        load_config(production(AWS_CONFIG_FILE=str(tmp_path / "absent")))


def test_an_endpoint_alone_is_enough_outside_development(tmp_path: Path):
    settings = load_config(
        production(AWS_CONFIG_FILE=str(tmp_path / "absent"), DYNAMODB_ENDPOINT="http://db:8000")
    )
    assert settings["DYNAMODB_ENDPOINT"] == "http://db:8000"
    assert settings["DYNAMODB_EMBEDDED"] is False


def test_development_keeps_the_embedded_database_despite_a_config_file(aws_config: Path):
    settings = load_config({"APP_ENV": "development", "AWS_CONFIG_FILE": str(aws_config)})
    assert settings["DYNAMODB_EMBEDDED"] is True
    assert settings["AWS_REGION"] is None


def test_an_unreadable_config_file_is_a_config_error(tmp_path: Path):
    broken = tmp_path / "broken"
    broken.write_text("[default\nregion = eu-west-1\n")
    with pytest.raises(ConfigError, match="AWS config file"):
        load_config(production(AWS_CONFIG_FILE=str(broken)))


@pytest.fixture
def production_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """os.environ as a production host without region variables would have it."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "DYNAMODB_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", SECRET)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "absent"))

    from devtools import embedded_db

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the embedded database must not start outside development")

    monkeypatch.setattr(embedded_db, "ensure_embedded", refuse)


def test_create_app_in_production_without_a_region_exits_4_with_one_line(
    production_process: None, capsys: pytest.CaptureFixture[str]
):
    from app import APP_LOAD_ERROR, create_app

    with pytest.raises(SystemExit) as stopped:
        create_app()
    assert stopped.value.code == APP_LOAD_ERROR
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "AWS_REGION" in lines[0]


def test_create_app_uses_the_config_file_region_for_its_client(
    production_process: None, monkeypatch: pytest.MonkeyPatch, aws_config: Path
):
    from app import create_app

    monkeypatch.setenv("AWS_CONFIG_FILE", str(aws_config))
    app = create_app()
    assert app.config["DYNAMODB_EMBEDDED"] is False
    assert app.extensions["db"].client.meta.region_name == "eu-central-1"
