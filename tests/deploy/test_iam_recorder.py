"""The IAM recording plugin (tests/support/iam_recorder.py) and the policy check it relies on."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import boto3
import click
import pytest
from botocore.stub import Stubber
from click.testing import CliRunner
from flask import Flask

from devtools import iam_policy
from store import schema
from store.db import Database
from tests.support import iam_recorder
from tests.support.iam_recorder import APP, HARNESS, OPERATOR, Recorder

pytestmark = pytest.mark.backend_independent

POLICIES = {
    APP: ("app-policy.json", {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"}),
    OPERATOR: ("operator-policy.json", {"dynamodb:Scan"}),
}
FENCED_COPY = {
    "TransactItems": [
        {"ConditionCheck": {"TableName": "t", "Key": {}, "ConditionExpression": "x"}},
        {"Put": {"TableName": "t", "Item": {}}},
        {"Put": {"TableName": "t", "Item": {}}},
    ]
}


def test_a_transaction_needs_the_action_of_each_kind_inside_it():
    assert iam_recorder.iam_actions("TransactWriteItems", FENCED_COPY) == [
        "dynamodb:ConditionCheckItem",
        "dynamodb:PutItem",
    ]
    assert iam_recorder.iam_actions("TransactGetItems", {"TransactItems": []}) == [
        "dynamodb:GetItem"
    ]
    # Batches are actions of their own: PutItem does not cover BatchWriteItem.
    assert iam_recorder.iam_actions("BatchWriteItem", {}) == ["dynamodb:BatchWriteItem"]


def test_an_action_the_policy_lacks_is_named_with_its_operation_and_first_test():
    recorder = Recorder()
    recorder.record(APP, "GetItem", {}, "tests/a.py::test_one")
    recorder.record(APP, "TransactWriteItems", FENCED_COPY, "tests/b.py::test_copy")
    recorder.record(APP, "TransactWriteItems", FENCED_COPY, "tests/c.py::test_later")
    recorder.record(HARNESS, "CreateTable", {}, "tests/a.py::test_one")

    problems = recorder.problems(POLICIES, whole_run=False)

    assert problems == [
        "app called TransactWriteItems, which needs dynamodb:ConditionCheckItem; "
        "app-policy.json does not grant it (first in tests/b.py::test_copy)"
    ]


def test_unused_grants_are_findings_only_on_a_whole_run():
    recorder = Recorder()
    recorder.record(APP, "GetItem", {}, "t::one")
    recorder.record(APP, "Query", {}, "t::one")
    recorder.record(OPERATOR, "GetItem", {}, "t::two")

    assert recorder.problems(POLICIES, whole_run=True) == [
        "operator called GetItem, which needs dynamodb:GetItem; operator-policy.json does not "
        "grant it (first in t::two)",
        "app-policy.json grants dynamodb:PutItem, which no app call used in this run",
        "operator-policy.json grants dynamodb:Scan, which no operator call used in this run",
    ]
    assert len(recorder.problems(POLICIES, whole_run=False)) == 1
    # An action the backend cannot reach (DynamoDB Local has no backups) is not "unused".
    assert (
        len(recorder.problems(POLICIES, whole_run=True, unreachable=frozenset({"dynamodb:Scan"})))
        == 2
    )


@pytest.fixture
def stubbed(pytestconfig: pytest.Config) -> tuple[Any, Recorder]:
    """A client with canned answers whose calls go to a recorder of this test's own (and
    not to the suite's, which would count them as the app's)."""
    client = boto3.session.Session().client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    for event in iam_recorder._EVENTS:
        client.meta.events.unregister(event, pytestconfig.stash[iam_recorder.HANDLER])
    recorder = Recorder()
    client.meta.events.register(iam_recorder._EVENTS[0], iam_recorder._handler(recorder))
    stubber = Stubber(client)
    for _ in range(8):
        stubber.add_response("describe_table", {"Table": {"TableStatus": "ACTIVE"}})
    stubber.activate()
    return client, recorder


def _callers(recorder: Recorder) -> dict[str, int]:
    return {who: count for who, count in recorder.calls.items() if count}


def test_production_code_is_the_apps_in_a_request_and_in_threads_started_there(stubbed):
    client, recorder = stubbed
    database = Database(client=client, table="t")
    app = Flask(__name__)

    schema.table_status(database)  # a test calling the store directly: the harness's
    with app.test_request_context("/healthz"):
        schema.table_status(database)
        worker = threading.Thread(target=schema.table_status, args=(database,))
        worker.start()
        worker.join()
        client.describe_table(TableName="t")  # the test's own call, even in a request

    assert _callers(recorder) == {HARNESS: 2, APP: 2}


def test_calls_inside_an_operator_command_are_the_operators(stubbed, monkeypatch):
    client, recorder = stubbed
    database = Database(client=client, table="t")

    def status() -> None:
        schema.table_status(database)
        worker = threading.Thread(target=schema.table_status, args=(database,))
        worker.start()
        worker.join()

    status.__module__ = "blueprints.migration.commands"  # where operator commands live
    other = click.command("other")(lambda: schema.table_status(database))

    assert CliRunner().invoke(click.command("status")(status)).exit_code == 0
    assert CliRunner().invoke(other).exit_code == 0  # not an operator command: harness

    assert _callers(recorder) == {OPERATOR: 2, HARNESS: 1}


def test_the_policy_check_refuses_wildcards_unknown_actions_and_any_resource(tmp_path: Path):
    policy = tmp_path / "policy.json"
    policy.write_text(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["dynamodb:*", "dynamodb:TransactWriteItems", "dynamodb:Query"],
                        "Resource": ["*", "arn:aws:dynamodb:REGION:ACCOUNT_ID:table/T/index/*"],
                    }
                ],
            }
        )
    )
    assert iam_policy.problems(policy) == [
        f"{policy}: statement 1: 'dynamodb:*' is not a DynamoDB action (no wildcards)",
        f"{policy}: statement 1: 'dynamodb:TransactWriteItems' is not a DynamoDB action "
        "(no wildcards)",
        f"{policy}: statement 1: '*' is not the table, its indexes or stream",
    ]
    assert iam_policy.problems(iam_policy.APP_POLICY) == []
    assert iam_policy.problems(iam_policy.OPERATOR_POLICY) == []


def test_dynamodb_streams_calls_are_recorded_as_dynamodb_actions(pytestconfig: pytest.Config):
    """`migration sync` reads the table's stream: its actions share IAM's dynamodb prefix."""
    client = boto3.session.Session().client(
        "dynamodbstreams", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    recorder = Recorder()
    for event in iam_recorder._EVENTS:
        client.meta.events.unregister(event, pytestconfig.stash[iam_recorder.HANDLER])
        client.meta.events.register(event, iam_recorder._handler(recorder))
    stubber = Stubber(client)
    stubber.add_response("get_records", {"Records": []})
    stubber.activate()

    client.get_records(ShardIterator="x" * 10)

    assert set(recorder.examples) == {(HARNESS, "dynamodb:GetRecords")}


def _part(args: list[str], ignored: tuple[str, ...] = (), complete: bool = True) -> dict[str, Any]:
    root = iam_recorder.ROOT
    return {
        "backend": "local",
        "args": [str(root / a) for a in args],
        "ignored": [str(root / i) for i in ignored],
        "complete": complete,
    }


def test_runs_that_split_the_suite_cover_it_only_together_and_only_if_all_passed():
    servers = ["tests/integration", "tests/e2e"]
    rest = _part(["tests"], ignored=tuple(servers))
    assert iam_recorder._covers_the_suite([rest, _part(servers)])
    assert iam_recorder._covers_the_suite([_part(["."])])
    assert not iam_recorder._covers_the_suite([rest])
    assert not iam_recorder._covers_the_suite([rest, _part(["tests/integration"])])
    assert not iam_recorder._covers_the_suite([rest, _part(servers, complete=False)])
    assert not iam_recorder._covers_the_suite([_part(["tests/store"]), _part(servers)])


def test_union_of_recorded_runs_finds_a_grant_no_part_used(tmp_path: Path):
    policies = iam_recorder.policies()
    granted = sorted(policies[APP][1])
    servers = ["tests/integration"]
    records = []
    for name, part, used in (
        ("rest", _part(["tests"], ignored=tuple(servers)), granted[1:]),
        ("servers", _part(servers), granted[:1]),
    ):
        path = tmp_path / f"{name}.json"
        path.write_text(
            json.dumps({**part, "used": {APP: used, OPERATOR: sorted(policies[OPERATOR][1])}})
        )
        records.append(str(path))
    assert iam_recorder.union(records) == []

    only_rest = tmp_path / "rest-only.json"
    only_rest.write_text(
        json.dumps(
            {
                **_part(["tests"], ignored=tuple(servers)),
                "used": {APP: granted[1:], OPERATOR: sorted(policies[OPERATOR][1])},
            }
        )
    )
    assert iam_recorder.union([str(only_rest)]) == [
        "these runs did not together run the whole suite, every test passing"
    ]
    # Both parts, but the first grant used by neither: a finding, named.
    (tmp_path / "servers.json").write_text(
        json.dumps({**_part(servers), "used": {APP: [], OPERATOR: []}})
    )
    found = iam_recorder.union(records)
    assert f"app-policy.json grants {granted[0]}, which no app call used in this run" in found
