"""Every attribute of every v1 row arrives with its exact type and value (PRODUCT promise 3)."""

from __future__ import annotations

import decimal
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store import keys, schema
from store.db import Database
from store.migration.flag import Flag
from store.migration.rows import normal
from tests.support.migration import migrate

# Numbers DynamoDB accepts at its edges: 38 significant digits, 1e-130 to 9.99…e125.
BOUNDARY_NUMBERS = [
    "0",
    "-0.5",
    "1E-130",
    "-1E-130",
    "9.9999999999999999999999999999999999999E+125",
    "-9.9999999999999999999999999999999999999E+125",
    "3.1415926535897932384626433832795028841",
    "12345678901234567890123456789012345678",
    "1234567895171680000000000000000000000000",
    "0.00000000000000000000000000000000000001",
    "1E+100",
]

names = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12
).map(lambda name: "a_" + name)


def _number_text(value: decimal.Decimal) -> str:
    return format(value, "f") if abs(value.adjusted()) < 30 else str(value)


numbers = st.one_of(
    st.sampled_from(BOUNDARY_NUMBERS),
    st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1).map(str),
    st.decimals(
        allow_nan=False, allow_infinity=False, places=6, min_value=-(10**20), max_value=10**20
    ).map(_number_text),
)


def _unique_numbers(values: list[str]) -> list[str]:
    seen: dict[decimal.Decimal, str] = {}
    context = decimal.Context(prec=60)
    for value in values:
        seen.setdefault(context.create_decimal(value).normalize(context), value)
    return list(seen.values())


scalars = st.one_of(
    st.text(max_size=40).map(lambda v: {"S": v}),
    numbers.map(lambda v: {"N": v}),
    st.binary(max_size=40).map(lambda v: {"B": v}),
    st.booleans().map(lambda v: {"BOOL": v}),
    st.just({"NULL": True}),
    st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=5, unique=True).map(
        lambda v: {"SS": v}
    ),
    st.lists(numbers, min_size=1, max_size=5).map(_unique_numbers).map(lambda v: {"NS": v}),
    st.lists(st.binary(min_size=1, max_size=12), min_size=1, max_size=5, unique=True).map(
        lambda v: {"BS": v}
    ),
)

attribute_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4).map(lambda v: {"L": v}),
        st.dictionaries(names, children, max_size=4).map(lambda v: {"M": v}),
    ),
    max_leaves=12,
)

extra_attributes = st.dictionaries(names, attribute_values, max_size=6)


def _fresh_database(client: Any) -> Database:
    name = f"prop-{uuid.uuid4().hex[:12]}"
    schema.ensure_table(client, name, poll=0.05)
    return Database(client=client, table=name)


def _v1_item(item_id: str, extras: dict[str, Any]) -> dict[str, Any]:
    return {
        **keys.v1_item(item_id),
        "title": {"S": f"item {item_id}"},
        "status": {"S": "open"},
        "createdAt": {"S": "2024-05-01T10:00:00.000000Z"},
        "updatedAt": {"S": "2024-05-01T10:00:00.000000Z"},
        "createdBy": {"S": "u1"},
        **extras,
    }


def _assert_copies_identical(database: Database, flag: Flag, ids: list[str]) -> None:
    for item_id in ids:
        v1 = database.client.get_item(
            TableName=database.table, Key=keys.v1_item(item_id), ConsistentRead=True
        )["Item"]
        v2 = database.client.get_item(
            TableName=database.table,
            Key=keys.item(flag.workspace_id, item_id),
            ConsistentRead=True,
        )["Item"]
        strip = ("PK", "SK")
        v1_data = {k: v for k, v in v1.items() if k not in strip}
        v2_data = {k: v for k, v in v2.items() if k not in strip}
        # Exact raw equality: same types, same number strings as the server returned them.
        assert v1_data.keys() == v2_data.keys()
        for name, value in v1_data.items():
            assert normal(value) == normal(v2_data[name]), name


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=st.lists(extra_attributes, min_size=1, max_size=6))
def test_every_type_and_value_survives_the_copy_exactly(ddb_client, rows):
    database = _fresh_database(ddb_client)
    try:
        ids = [f"p{i}" for i in range(len(rows))]
        for item_id, extras in zip(ids, rows, strict=True):
            database.client.put_item(TableName=database.table, Item=_v1_item(item_id, extras))
        database.client.put_item(
            TableName=database.table,
            Item={
                **keys.v1_member("u1"),
                "email": {"S": "a@x.io"},
                "role": {"S": "owner"},
                "joinedAt": {"S": "2024-01-01T00:00:00Z"},
            },
        )

        flag = migrate(database)

        assert flag is not None and flag.items == len(rows)
        _assert_copies_identical(database, flag, ids)
    finally:
        ddb_client.delete_table(TableName=database.table)


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"S": "bottom"}
    for level in range(depth):
        value = {"M": {"next": value}} if level % 2 else {"L": [value]}
    return value


def test_boundary_numbers_deep_nesting_and_empty_values_survive(database, monkeypatch):
    import boto3.dynamodb.types as boto_types

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the copy must not convert values to Python types")

    monkeypatch.setattr(boto_types.TypeDeserializer, "deserialize", refuse)
    extras = {
        **{f"n{i}": {"N": value} for i, value in enumerate(BOUNDARY_NUMBERS)},
        "numbers": {"NS": BOUNDARY_NUMBERS[2:6]},
        "deep": _nested(31),  # with the item itself: DynamoDB's 32 levels
        "emptyString": {"S": ""},
        "emptyBinary": {"B": b""},
        "emptyList": {"L": []},
        "emptyMap": {"M": {}},
        "nothing": {"NULL": True},
        "no": {"BOOL": False},
        "binarySet": {"BS": [b"\x00", b"\xff\xfe"]},
        "unicode": {"S": "Ünïcødé ✓ 𝄞 \u0000 end"},
    }
    database.client.put_item(TableName=database.table, Item=_v1_item("edge", extras))

    flag = migrate(database)

    assert flag is not None and flag.items == 1
    _assert_copies_identical(database, flag, ["edge"])


@pytest.mark.local_only("moto accepts numbers and nesting that real DynamoDB rejects")
def test_the_server_rejects_what_dynamodb_rejects_so_the_edges_above_are_real(database):
    from botocore.exceptions import ClientError

    too_precise = _v1_item("x", {"n": {"N": "1234567890123456789012345678901234567891"}})
    too_deep = _v1_item("y", {"deep": _nested(33)})
    for item in (too_precise, too_deep):
        with pytest.raises(ClientError):
            database.client.put_item(TableName=database.table, Item=item)
