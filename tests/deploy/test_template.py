"""deploy/table.yaml: the table it declares is the table `db init` makes, and its policies
are the ones in deploy/iam/, so the template and the code cannot drift apart."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cfnlint.decode import decode

from devtools import iam_policy
from tests.support.app import make_app
from tests.support.helpers import create_v1_table, is_moto

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "table.yaml"
NO_VALUE = object()


def _template() -> dict[str, Any]:
    template, problems = decode(str(TEMPLATE))
    assert not problems, problems
    assert template is not None
    return dict(template)


def _parameters(template: dict[str, Any], **given: str) -> dict[str, Any]:
    values = {name: spec.get("Default") for name, spec in template["Parameters"].items()}
    return {**values, **given}


def _resolve(node: Any, template: dict[str, Any], params: dict[str, Any]) -> Any:
    """The node with Ref, Fn::If, Fn::Equals and Fn::Not worked out for these parameters
    (enough for this template; Sub and GetAtt, which name the created table, stay)."""
    if isinstance(node, list):
        return [v for v in (_resolve(x, template, params) for x in node) if v is not NO_VALUE]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Ref"} and (node["Ref"] in params or node["Ref"] == "AWS::NoValue"):
        return params.get(node["Ref"], NO_VALUE)
    if set(node) == {"Fn::If"}:
        condition, then, otherwise = node["Fn::If"]
        chosen = then if _condition(condition, template, params) else otherwise
        return _resolve(chosen, template, params)
    resolved = {k: _resolve(v, template, params) for k, v in node.items()}
    return {k: v for k, v in resolved.items() if v is not NO_VALUE}


def _condition(name: str, template: dict[str, Any], params: dict[str, Any]) -> bool:
    def evaluate(node: Any) -> Any:
        if isinstance(node, dict) and "Fn::Equals" in node:
            left, right = (_resolve(x, template, params) for x in node["Fn::Equals"])
            return left == right
        if isinstance(node, dict) and "Fn::Not" in node:
            return not evaluate(node["Fn::Not"][0])
        raise AssertionError(f"condition form not handled here: {node}")

    return bool(evaluate(template["Conditions"][name]))


def _table(**given: str) -> dict[str, Any]:
    template = _template()
    resolved: dict[str, Any] = _resolve(
        template["Resources"]["Table"]["Properties"], template, _parameters(template, **given)
    )
    return resolved


def _indexes(indexes: list[dict[str, Any]]) -> dict[str, tuple[Any, Any]]:
    return {i["IndexName"]: (i["KeySchema"], i["Projection"]) for i in indexes}


@pytest.fixture(params=["new", "v1 upgraded"])
def created_by_db_init(ddb_client: Any, request: Any) -> Iterator[tuple[Any, str, bool]]:
    """A table as `db init` leaves it: made from nothing, or a v1 table brought up to v2
    (which an operator may then import into the stack)."""
    name = f"cfn-{uuid.uuid4().hex[:10]}"
    upgraded = request.param == "v1 upgraded"
    if upgraded:
        create_v1_table(ddb_client, name)
    app = make_app(ddb_client, name)
    result = app.test_cli_runner().invoke(args=["db", "init"])
    assert result.exit_code == 0, result.output
    try:
        yield ddb_client, name, upgraded
    finally:
        ddb_client.delete_table(TableName=name)


def test_the_template_declares_the_table_db_init_creates(
    created_by_db_init: tuple[Any, str, bool],
):
    client, name, upgraded = created_by_db_init
    created = client.describe_table(TableName=name)["Table"]
    declared = _table()

    assert declared["KeySchema"] == created["KeySchema"]
    declared_types = {
        d["AttributeName"]: d["AttributeType"] for d in declared["AttributeDefinitions"]
    }
    created_types = {
        d["AttributeName"]: d["AttributeType"] for d in created["AttributeDefinitions"]
    }
    if upgraded and is_moto(client):
        # moto keeps a table's first AttributeDefinitions when UpdateTable adds an index;
        # DynamoDB (and DynamoDB Local, where this test compares all of them) adds its keys.
        assert created_types.items() <= declared_types.items()
    else:
        assert declared_types == created_types
    assert _indexes(declared["GlobalSecondaryIndexes"]) == _indexes(
        created["GlobalSecondaryIndexes"]
    )
    assert declared["BillingMode"] == created["BillingModeSummary"]["BillingMode"]

    ttl = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] in ("ENABLED", "ENABLING")
    assert declared["TimeToLiveSpecification"] == {
        "AttributeName": ttl["AttributeName"],
        "Enabled": True,
    }


@pytest.mark.parametrize("created_by_db_init", ["new"], indirect=True)
def test_stream_and_recovery_match_where_db_init_sets_them(
    created_by_db_init: tuple[Any, str, bool],
):
    """The rolling deploy needs the stream with both images; `db init` turns it on (where
    it does not yet, only the template's side is checked). Point-in-time recovery is compared
    where the server has backups (DynamoDB Local has none)."""
    client, name, _ = created_by_db_init
    created = client.describe_table(TableName=name)["Table"]
    declared = _table()

    assert declared["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    if created.get("StreamSpecification", {}).get("StreamEnabled"):
        assert created["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert declared["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    try:
        backups = client.describe_continuous_backups(TableName=name)
    except ClientError:
        return  # no backups on this server: db init skipped it, saying so
    recovery = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert recovery["PointInTimeRecoveryStatus"] == "ENABLED"


@pytest.mark.backend_independent
def test_on_demand_by_default_and_provisioned_capacity_everywhere_when_asked():
    on_demand = _table()
    assert on_demand["BillingMode"] == "PAY_PER_REQUEST"
    assert "ProvisionedThroughput" not in on_demand
    assert all("ProvisionedThroughput" not in i for i in on_demand["GlobalSecondaryIndexes"])

    provisioned = _table(BillingMode="PROVISIONED", ReadCapacityUnits=7, WriteCapacityUnits=3)
    capacity = {"ReadCapacityUnits": 7, "WriteCapacityUnits": 3}
    assert provisioned["ProvisionedThroughput"] == capacity
    # An index on a provisioned table needs capacity of its own, or CloudFormation refuses.
    assert [i["ProvisionedThroughput"] for i in provisioned["GlobalSecondaryIndexes"]] == [
        capacity,
        capacity,
    ]


@pytest.mark.backend_independent
def test_encryption_is_aws_owned_unless_a_key_is_given_and_the_table_is_protected():
    assert _table()["SSESpecification"] == {"SSEEnabled": False}
    key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    assert _table(KmsKeyArn=key)["SSESpecification"] == {
        "SSEEnabled": True,
        "SSEType": "KMS",
        "KMSMasterKeyId": key,
    }
    assert _table()["DeletionProtectionEnabled"] is True
    assert _template()["Resources"]["Table"]["DeletionPolicy"] == "Retain"


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    ("resource", "policy"),
    [("AppPolicy", iam_policy.APP_POLICY), ("OperatorPolicy", iam_policy.OPERATOR_POLICY)],
)
def test_the_templates_policies_are_the_ones_in_deploy_iam(resource: str, policy: Path):
    template = _template()
    document = template["Resources"][resource]["Properties"]["PolicyDocument"]
    assert iam_policy.actions(document) == iam_policy.load_actions(policy), (
        f"{resource} in deploy/table.yaml and {policy.name} must allow the same actions"
    )
    assert iam_policy.problems(policy) == []
    (statement,) = iam_policy.statements(document)
    assert statement["Resource"] == [
        {"Fn::GetAtt": ["Table", "Arn"]},
        {"Fn::Sub": "${Table.Arn}/index/*"},
        {"Fn::Sub": "${Table.Arn}/stream/*"},
    ]
