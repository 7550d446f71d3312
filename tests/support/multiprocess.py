"""Tools for the multi-process migration tests (tests/integration): how to point servers at the
fault proxy, run things in parallel, and check from the table that the migration happened
exactly once, how a run ended, and what users edited."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from devtools.live_server import LiveServer
from store import keys, schema
from store.changes import CHANGED_AT
from store.db import Database, build_client
from store.migration.claim import STATE_COMPLETE, Claim, read_claim
from store.migration.flag import Flag, read_flag
from store.migration.rows import ORIGIN, same_data
from tests.support.faults import Answer, FaultProxy
from tests.support.helpers import scan_all, wait_for

T = TypeVar("T")


def server_env(proxy: FaultProxy, *, lease: float, **more: str) -> dict[str, str]:
    """Send the app (every worker and its CLI) through the proxy; keep the lease short."""
    return {"DYNAMODB_ENDPOINT": proxy.url, "MIGRATION_LEASE_SECONDS": str(lease), **more}


def proxied_table(proxy: FaultProxy, local_endpoint: str) -> tuple[Any, Database]:
    """For the proxy's own tests: a fresh table, a client through ``proxy`` and a Database
    straight on DynamoDB Local (to see what landed). The caller deletes the table."""
    client = build_client(endpoint=proxy.url, region="us-east-1", local_credentials=True)
    direct = Database(
        client=build_client(endpoint=local_endpoint, region="us-east-1", local_credentials=True),
        table=f"proxy-{uuid.uuid4().hex[:8]}",
    )
    schema.ensure_table(client, direct.table, poll=0.05)
    return client, direct


def parallel(function: Callable[[int], T], count: int) -> list[T]:
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(function, range(count)))


def workspace_rows(db: Database) -> list[dict[str, Any]]:
    return [
        r
        for r in scan_all(db)
        if r["PK"]["S"].startswith(keys.WORKSPACE_PREFIX) and r["SK"]["S"] == keys.WORKSPACE_SK
    ]


def rows_of(db: Database, workspace_id: str) -> dict[str, dict[str, Any]]:
    """The rows of one workspace's partition, by sort key."""
    found = db.query_all(
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": keys.workspace_pk(workspace_id)}},
        ConsistentRead=True,
    )
    return {r["SK"]["S"]: r for r in found}


def assert_migrated_exactly_once(db: Database, counts: tuple[int, int, int]) -> Flag:
    """One flag, one workspace (origin v1-migration, the flag's), and in it one identical
    copy of every v1 item, setting and member (roles kept); flag counts equal v1 counts."""
    flag = read_flag(db)
    assert flag is not None, "no V2_COMPLETE flag"
    workspaces = workspace_rows(db)
    assert len(workspaces) == 1, f"{len(workspaces)} workspaces: {workspaces}"
    assert workspaces[0]["origin"] == {"S": ORIGIN}
    assert workspaces[0]["PK"]["S"] == keys.workspace_pk(flag.workspace_id or "")

    rows = scan_all(db)
    v1_items = {
        r["PK"]["S"].removeprefix(keys.V1_ITEM_PREFIX): r
        for r in rows
        if r["PK"]["S"].startswith(keys.V1_ITEM_PREFIX) and r["SK"]["S"] == keys.V1_ITEM_SK
    }
    v1_settings = {r["SK"]["S"]: r for r in rows if r["PK"]["S"] == keys.V1_SETTINGS_PK}
    v1_members = {r["SK"]["S"]: r for r in rows if r["PK"]["S"] == keys.V1_MEMBERS_PK}
    assert (len(v1_items), len(v1_settings), len(v1_members)) == counts
    assert (flag.items, flag.settings, flag.members) == counts

    v2 = rows_of(db, flag.workspace_id or "")
    v2_items = {sk.removeprefix("ITEM#"): r for sk, r in v2.items() if sk.startswith("ITEM#")}
    v2_settings = {sk.removeprefix("SET#"): r for sk, r in v2.items() if sk.startswith("SET#")}
    v2_members = {sk.removeprefix("MEMBER#"): r for sk, r in v2.items() if sk.startswith("MEMBER#")}
    assert v2_items.keys() == v1_items.keys()
    assert v2_settings.keys() == v1_settings.keys()
    assert v2_members.keys() == v1_members.keys(), "members are exactly the v1 members"
    different = [i for i, row in v1_items.items() if not same_data(row, v2_items[i])]
    assert not different, f"{len(different)} items differ from v1, e.g. {different[:3]}"
    for name, row in v1_settings.items():
        assert same_data(row, v2_settings[name]), name
    for user_id, row in v1_members.items():
        assert v2_members[user_id]["role"] == row["role"]
    claim = read_claim(db)
    assert claim is not None and claim.state == STATE_COMPLETE
    assert claim.workspace_id == flag.workspace_id
    return flag


def brief(answers: Iterable[Answer]) -> list[tuple[int, str | None, tuple[str, ...]]]:
    """Answers for a failure message: status, code and the first cancellation reason."""
    return [(a.status, a.code, a.reasons[:1]) for a in answers]


def wait_for_claim(db: Database, predicate: Callable[[Claim], bool]) -> Claim:
    def check() -> Claim | None:
        claim = read_claim(db)
        return claim if claim is not None and predicate(claim) else None

    return wait_for(check, timeout=60, step=0.05)


def run_ended(server: LiveServer, run_id: str, timeout: float = 60.0) -> str:
    """The server log's line saying how migration run ``run_id`` ended (it logs exactly one
    when its copy threads and heartbeat have all stopped)."""
    pattern = re.compile(
        rf"migration run {re.escape(run_id)} (stopped|failed|out of budget|crashed)"
    )

    def ended() -> str | None:
        match = pattern.search(server.log_tail(2_000_000))
        return match.group(0) if match else None

    try:
        return wait_for(ended, timeout=timeout, step=0.1)
    except AssertionError:
        raise AssertionError(
            f"run {run_id} logged no end within {timeout}s\n{server.log_tail()}"
        ) from None


def edit_items(db: Database, workspace_id: str, item_ids: Iterable[str]) -> dict[str, str]:
    """Edit items the way the app's item form would (title, updatedAt and the marker every
    v2 write sets, so the late-write sync leaves them alone); the new titles."""
    titles = {}
    for item_id in item_ids:
        title = f"Edited after the migration {uuid.uuid4().hex[:6]}"
        db.client.update_item(
            TableName=db.table,
            Key=keys.item(workspace_id, item_id),
            UpdateExpression="SET title = :t, updatedAt = :now, #changed = :now",
            ConditionExpression="attribute_exists(PK)",
            ExpressionAttributeNames={"#changed": CHANGED_AT},
            ExpressionAttributeValues={
                ":t": {"S": title},
                ":now": {"S": "2026-11-25T12:00:00.000000Z"},
            },
        )
        titles[item_id] = title
    return titles


def titles_of(db: Database, workspace_id: str, item_ids: Iterable[str]) -> dict[str, str]:
    rows = rows_of(db, workspace_id)
    return {i: rows[f"ITEM#{i}"]["title"]["S"] for i in item_ids}
