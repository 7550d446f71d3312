"""/healthz: whether the table answers and the migration's state, at most one read per few
seconds per process however often it is asked."""

from __future__ import annotations

from typing import Any

import pytest

from blueprints.main import routes
from store import keys
from tests.support.auth import dynamodb_calls, dynamodb_failure
from tests.support.helpers import WebClient, wait_for


def _health(app: Any) -> tuple[int, dict[str, str]]:
    response = app.test_client().get("/healthz")
    return response.status_code, response.get_json()


def test_a_fresh_table_reports_no_migration(app: Any):
    assert _health(app) == (200, {"status": "ok", "table": "ok", "migration": "none"})


@pytest.mark.parametrize("state", ["running", "waiting", "failed"])
def test_the_claims_state_is_reported_until_the_flag(
    app: Any, database: Any, monkeypatch: pytest.MonkeyPatch, state: str
):
    monkeypatch.setattr(routes, "HEALTH_CACHE_SECONDS", 0.0)
    database.client.put_item(
        TableName=database.table, Item={**keys.migration_claim(), "state": {"S": state}}
    )
    assert _health(app)[1]["migration"] == state


def test_a_finished_migration_reads_complete(
    app: Any, web: WebClient, seed: Any, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(routes, "HEALTH_CACHE_SECONDS", 0.0)
    accounts = seed(items=10)
    web.login(accounts[0].email)
    web.get("/")
    wait_for(lambda: _health(app)[1]["migration"] == "complete", timeout=60)


def test_many_health_checks_cost_one_read_per_interval(app: Any, database: Any):
    with dynamodb_calls(database.client) as calls:
        answers = [_health(app) for _ in range(20)]

    assert {status for status, _ in answers} == {200}
    assert [name for name, _ in calls] == ["BatchGetItem"]
    [(_, params)] = calls
    assert params["RequestItems"][database.table]["ConsistentRead"] is False


def test_a_table_that_does_not_answer_is_503_and_is_not_asked_again_at_once(
    app: Any, database: Any
):
    with dynamodb_failure(database.client, code="ResourceNotFoundException") as failed:
        first = [_health(app) for _ in range(5)]

    assert first == [(503, {"status": "unavailable", "table": "unreachable"})] * 5
    assert failed == ["BatchGetItem"]
