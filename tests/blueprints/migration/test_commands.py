"""flask migration status | verify | cleanup, as an operator runs them."""

from __future__ import annotations

from typing import Any

from store import keys
from store.migration.flag import read_flag
from tests.support.helpers import hooked, rows_with, scan_all
from tests.support.migration import migrate


def test_status_before_anything_says_no_flag_and_counts_v1(runner, seed):
    seed(items=7, settings=3, members=2)

    result = runner.invoke(args=["migration", "status"])

    assert result.exit_code == 0, result.output
    assert "flag: not written" in result.output
    assert "claim: none" in result.output
    assert "v1 rows: items=7 settings=3 members=2" in result.output


def test_status_after_the_migration_shows_flag_claim_and_v2_counts(runner, seed, database):
    seed(items=7, settings=3, members=2)
    flag = migrate(database, user_id="starter")

    result = runner.invoke(args=["migration", "status"])

    assert result.exit_code == 0, result.output
    assert "by user starter" in result.output and "items=7 settings=3 members=2" in result.output
    assert "claim: complete" in result.output
    assert f"v2 rows in {flag.workspace_id}: items=7 settings=3 members=2" in result.output


def test_verify_refuses_when_nothing_was_migrated(runner, seed):
    seed(items=3)

    result = runner.invoke(args=["migration", "verify"])

    assert result.exit_code == 2
    assert "no migration has started" in result.output


def test_verify_passes_on_an_exact_copy(runner, seed, database):
    seed(items=9, settings=2, members=2)
    migrate(database)

    result = runner.invoke(args=["migration", "verify"])

    assert result.exit_code == 0, result.output
    assert "summary: 13 identical" in result.output


def test_verify_reports_missing_changed_and_late_v1_rows(runner, seed, database):
    seed(items=6, settings=1, members=1)
    flag = migrate(database)
    v2_items = rows_with(database, f"WORKSPACE#{flag.workspace_id}", "ITEM#")
    database.client.delete_item(
        TableName=database.table, Key={"PK": v2_items[0]["PK"], "SK": v2_items[0]["SK"]}
    )
    database.client.update_item(
        TableName=database.table,
        Key={"PK": v2_items[1]["PK"], "SK": v2_items[1]["SK"]},
        UpdateExpression="SET title = :t",
        ExpressionAttributeValues={":t": {"S": "edited in v2"}},
    )
    database.client.put_item(  # a late write from a v1 server after the flag
        TableName=database.table,
        Item={
            **keys.v1_item("late"),
            "title": {"S": "late"},
            "status": {"S": "open"},
            "createdAt": {"S": "2030-01-01T00:00:00.000000Z"},
            "updatedAt": {"S": "2030-01-01T00:00:00.000000Z"},
        },
    )

    result = runner.invoke(args=["migration", "verify"])

    assert result.exit_code == 1
    assert "missing in v2: item ITEM#late / ITEM" in result.output
    assert f"missing in v2: item {v2_items[0]['SK']['S']} / ITEM" in result.output
    assert f"different: item {v2_items[1]['SK']['S']} / ITEM" in result.output


def test_cleanup_refuses_before_the_flag(runner, seed, database):
    seed(items=3)
    before = scan_all(database)

    for args in (["migration", "cleanup", "--dry-run"], ["migration", "cleanup"]):
        result = runner.invoke(args=args)
        assert result.exit_code == 2
        assert "refusing" in result.output
    assert scan_all(database) == before


def test_cleanup_dry_run_lists_only_identical_pairs_and_deletes_nothing(runner, seed, database):
    seed(items=5, settings=1, members=1)
    flag = migrate(database)
    v1_items = [r for r in scan_all(database) if r["SK"]["S"] == "ITEM"]
    changed_v1, edited_v2 = v1_items[0], v1_items[1]
    database.client.update_item(
        TableName=database.table,
        Key={"PK": changed_v1["PK"], "SK": changed_v1["SK"]},
        UpdateExpression="SET title = :t, updatedAt = :u",
        ExpressionAttributeValues={":t": {"S": "v1 edit"}, ":u": {"S": "2099-01-01T00:00:00Z"}},
    )
    edited_id = edited_v2["PK"]["S"].removeprefix("ITEM#")
    database.client.update_item(
        TableName=database.table,
        Key=keys.item(flag.workspace_id, edited_id),
        UpdateExpression="SET title = :t",
        ExpressionAttributeValues={":t": {"S": "v2 edit"}},
    )
    before = scan_all(database)

    result = runner.invoke(args=["migration", "cleanup", "--dry-run"])

    assert result.exit_code == 1  # some rows are kept
    assert f"keep   item {changed_v1['PK']['S']} / ITEM (v1 changed after the migration)" in (
        result.output
    )
    assert f"keep   item {edited_v2['PK']['S']} / ITEM (different)" in result.output
    deletions = [line for line in result.output.splitlines() if line.startswith("delete ")]
    assert len(deletions) == 3 + 1 + 1  # 3 unchanged items, 1 setting, 1 member
    assert "dry run: nothing was deleted" in result.output
    assert scan_all(database) == before


def test_cleanup_deletes_only_identical_v1_rows_and_never_a_row_edited_meanwhile(
    runner, seed, database, app
):
    seed(items=6, settings=2, members=2)
    flag = migrate(database)
    v1_items = sorted(
        (r for r in scan_all(database) if r["SK"]["S"] == "ITEM"), key=lambda r: r["PK"]["S"]
    )
    racing = v1_items[0]
    client = app.extensions["db"].client
    raced = {"done": False}

    def v1_server_edits_first(params: dict[str, Any], **_: Any) -> None:
        # A v1 server writes to this row between the comparison and the delete.
        if params["Key"]["PK"] == racing["PK"] and not raced["done"]:
            raced["done"] = True
            database.client.update_item(
                TableName=database.table,
                Key={"PK": racing["PK"], "SK": racing["SK"]},
                UpdateExpression="SET title = :t",
                ExpressionAttributeValues={":t": {"S": "late v1 edit"}},
            )

    with hooked(client, "provide-client-params.dynamodb.DeleteItem", v1_server_edits_first):
        result = runner.invoke(args=["migration", "cleanup"])

    assert raced["done"]
    assert result.exit_code == 1, result.output
    assert f"kept: changed while cleaning up: item {racing['PK']['S']} / ITEM" in result.output
    remaining = [r for r in scan_all(database) if r["SK"]["S"] == "ITEM"]
    assert [r["PK"] for r in remaining] == [racing["PK"]]
    assert remaining[0]["title"] == {"S": "late v1 edit"}
    assert not [r for r in scan_all(database) if r["PK"]["S"] in ("SETTINGS", "MEMBERS")]
    # Every v2 copy is still there.
    v2 = rows_with(database, f"WORKSPACE#{flag.workspace_id}")
    assert len([r for r in v2 if r["SK"]["S"].startswith("ITEM#")]) == 6
    assert read_flag(database) == flag
