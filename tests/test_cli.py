"""The operator commands this foundation owns: `db init` and `legacy seed`."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from typing import Any

import pytest
from werkzeug.security import check_password_hash

from store import keys
from store.migration import legacy
from tests.support.app import make_app
from tests.support.helpers import WebClient, create_v1_table, scan_all

ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
ALL_TYPES = {"S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL"}


def _kinds(rows: list[dict[str, Any]]) -> Counter[str]:
    counted: Counter[str] = Counter()
    for row in rows:
        pk, sk = row["PK"]["S"], row["SK"]["S"]
        if pk.startswith(keys.V1_ITEM_PREFIX) and sk == keys.V1_ITEM_SK:
            counted["item"] += 1
        elif pk == keys.V1_SETTINGS_PK:
            counted["setting"] += 1
        elif pk == keys.V1_MEMBERS_PK:
            counted["member"] += 1
        elif pk.startswith(keys.USER_PREFIX) and sk == keys.PROFILE_SK:
            counted["user"] += 1
        elif pk.startswith(keys.EMAIL_PREFIX) and sk == keys.EMAIL_SK:
            counted["email"] += 1
        else:
            counted["other"] += 1
    return counted


# --- db init -----------------------------------------------------------------------------------


def test_db_init_creates_a_missing_table_and_is_harmless_twice(ddb_client: Any):
    name = f"cli-{uuid.uuid4().hex[:10]}"
    app = make_app(ddb_client, name)
    try:
        first = app.test_cli_runner().invoke(args=["db", "init"])
        assert first.exit_code == 0, first.output
        assert f"created table {name}" in first.output
        assert f"table {name} is ready" in first.output
        app.extensions["db"].client.put_item(
            TableName=name, Item={**keys.key("KEEP", "ME"), "v": {"N": "1"}}
        )
        before = scan_all(app.extensions["db"])

        second = app.test_cli_runner().invoke(args=["db", "init"])

        assert second.exit_code == 0, second.output
        assert "created" not in second.output and "added" not in second.output
        assert scan_all(app.extensions["db"]) == before
    finally:
        ddb_client.delete_table(TableName=name)


def test_db_init_upgrades_a_v1_table_without_touching_its_rows(ddb_client: Any):
    name = f"v1cli-{uuid.uuid4().hex[:10]}"
    create_v1_table(ddb_client, name)
    app = make_app(ddb_client, name)
    try:
        seeded = app.test_cli_runner().invoke(
            args=["legacy", "seed", "--items", "12", "--settings", "3", "--members", "3"]
        )
        assert seeded.exit_code == 0, seeded.output
        before = scan_all(app.extensions["db"])

        result = app.test_cli_runner().invoke(args=["db", "init"])

        assert result.exit_code == 0, result.output
        assert "added index ByUser" in result.output and "added index ByCreated" in result.output
        assert "enabled TTL on expiresAt" in result.output
        assert scan_all(app.extensions["db"]) == before
    finally:
        ddb_client.delete_table(TableName=name)


# --- legacy seed -------------------------------------------------------------------------------


def test_legacy_seed_writes_exactly_the_asked_counts_in_v1_shapes(app: Any, database: Any):
    result = app.test_cli_runner().invoke(
        args=["legacy", "seed", "--items", "9", "--settings", "3", "--members", "2", "--seed", "4"]
    )

    assert result.exit_code == 0, result.output
    rows = scan_all(database)
    assert _kinds(rows) == Counter(item=9, setting=3, member=2, user=3, email=3)

    users = {
        r["PK"]["S"].removeprefix(keys.USER_PREFIX): r for r in rows if r["SK"]["S"] == "PROFILE"
    }
    pointers = {
        r["PK"]["S"].removeprefix(keys.EMAIL_PREFIX): r for r in rows if r["SK"]["S"] == "EMAIL"
    }
    members = [r for r in rows if r["PK"]["S"] == keys.V1_MEMBERS_PK]
    items = [r for r in rows if r["SK"]["S"] == keys.V1_ITEM_SK]
    settings = [r for r in rows if r["PK"]["S"] == keys.V1_SETTINGS_PK]

    for user_id, user in users.items():
        assert set(user) == {"PK", "SK", "email", "name", "passwordHash"}
        email = user["email"]["S"]
        assert email == email.lower() and pointers[email]["userId"]["S"] == user_id
        assert set(pointers[email]) == {"PK", "SK", "userId"}
        assert user["passwordHash"]["S"].startswith("pbkdf2:sha256:")
    one_hash = next(iter(users.values()))["passwordHash"]["S"]
    assert check_password_hash(one_hash, legacy.DEMO_PASSWORD)

    assert sorted(m["role"]["S"] for m in members) == ["admin", "owner"]
    for member in members:
        assert member["SK"]["S"] in users
        assert set(member) == {"PK", "SK", "email", "role", "joinedAt"}
        assert ISO_UTC.match(member["joinedAt"]["S"])
        assert member["email"] == users[member["SK"]["S"]]["email"]

    for item in items:
        assert {"title", "status", "createdAt", "updatedAt", "createdBy"} <= set(item)
        assert item["status"]["S"] in ("open", "done")
        assert ISO_UTC.match(item["createdAt"]["S"]) and ISO_UTC.match(item["updatedAt"]["S"])
        assert item["createdBy"]["S"] in {m["SK"]["S"] for m in members}
        if "tags" in item:
            assert "SS" in item["tags"]
    kinds_seen = {kind for item in items for value in item.values() for kind in value}
    assert kinds_seen == ALL_TYPES  # some items carry attributes of every DynamoDB type

    for setting in settings:
        assert set(setting) == {"PK", "SK", "value", "updatedAt"}

    assert "wrote 9 items, 3 settings, 2 members" in result.output
    assert f"password for every account: {legacy.DEMO_PASSWORD}" in result.output
    for user in users.values():
        assert user["email"]["S"] in result.output


def test_the_printed_accounts_sign_in_with_the_printed_password(app: Any, database: Any):
    result = app.test_cli_runner().invoke(
        args=["legacy", "seed", "--items", "2", "--settings", "1", "--members", "2"]
    )
    printed = re.findall(r"^\s+(\S+@\S+)\s", result.output, flags=re.M)
    password = result.output.split("password for every account: ")[1].splitlines()[0]
    assert len(printed) == 3

    response = WebClient(app.test_client()).login(printed[0], password)

    assert response.status_code == 303


def test_many_members_still_get_one_account_per_address(app: Any, database: Any):
    result = app.test_cli_runner().invoke(
        args=["legacy", "seed", "--items", "1", "--settings", "1", "--members", "9"]
    )

    assert result.exit_code == 0, result.output
    rows = scan_all(database)
    assert _kinds(rows) == Counter(item=1, setting=1, member=9, user=10, email=10)
    emails = [r["email"]["S"] for r in rows if r["SK"]["S"] == keys.PROFILE_SK]
    assert len(set(emails)) == 10


@pytest.mark.parametrize("first_seed", [True, False])
def test_if_empty_seeds_only_an_empty_table(app: Any, database: Any, first_seed: bool):
    runner = app.test_cli_runner()
    if first_seed:
        assert runner.invoke(args=["legacy", "seed", "--items", "3"]).exit_code == 0
    before = scan_all(database)

    result = runner.invoke(args=["legacy", "seed", "--items", "4", "--if-empty"])

    assert result.exit_code == 0, result.output
    if first_seed:
        assert "not seeding" in result.output
        assert scan_all(database) == before
    else:
        assert _kinds(scan_all(database))["item"] == 4
