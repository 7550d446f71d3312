"""Renaming and deleting a workspace: the owner's one write, then bounded work in slices.

**Rename.** The workspace row holds the name; each member row holds a copy
(``workspaceName``, for "my workspaces" from the ByUser index). ``rename`` changes the row
and raises ``nameVersion`` in one transaction with a check that the caller is still an owner;
``copy_name`` then brings member rows up to that version, at most ``max_rows`` writes per
call, each conditional on the row's own ``workspaceNameVersion`` being older (so a slow
copier of an earlier rename can never write its older name over a newer one) and on the row
existing (a removed member is not brought back). ``namesCopied`` on the workspace row says
when every copy has caught up. Until then the switcher may show the old name; the workspace's
own pages read the row and show the new one.

**Delete.** ``start_deletion`` marks the row ``lifecycle = deleting`` (conditional on the
typed name matching, on no deletion having started, and, in the same transaction, on the
caller being an owner). From then on every workspace page answers 410. ``delete_slice``
removes the partition's rows in batches (members first, so the workspace leaves everyone's
switcher first; an invite takes its token pointer with it) until a deadline, counting
``deletedRows``. A slice holds a lease on the workspace row (``deleteRunner``,
``deleteLeaseUntil``), so two processes do not work at once, and a crashed slice's work is
taken over when its lease lapses. When a consistent query finds nothing left but the
workspace row, that row becomes a tombstone (``lifecycle = deleted``, TTL 30 days), so a late
visitor gets "deleted" rather than "unknown" for a while. v1 rows are never touched.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from . import keys
from .batch import chunk_requests, write_chunk
from .db import (
    Database,
    RawItem,
    cancellation_reasons,
    n,
    now_iso,
    number,
    s,
    text,
    transact,
    update_if,
)

DELETING, DELETED = "deleting", "deleted"
LIFECYCLE = "lifecycle"
NAME_VERSION = "nameVersion"
MEMBER_NAME_VERSION = "workspaceNameVersion"
TOMBSTONE_SECONDS = 30 * 86400
LEASE_SECONDS = 30
PAGE = 100


class NotAnOwner(Exception):
    """The caller is no longer an owner of the workspace."""


class NameMismatch(Exception):
    """The typed name is not the workspace's name (or it changed meanwhile)."""


class Gone(Exception):
    """The workspace is unknown, or being deleted already."""


@dataclass(frozen=True)
class Deletion:
    """How far a deletion got, for the owner's progress page."""

    workspace_id: str
    name: str
    state: str
    deleted_by: str
    deleted_rows: int

    @property
    def done(self) -> bool:
        return self.state == DELETED


def _owner_check(db: Database, workspace_id: str, user_id: str) -> dict[str, Any]:
    return {
        "ConditionCheck": {
            "TableName": db.table,
            "Key": keys.member(workspace_id, user_id),
            "ConditionExpression": "#role = :owner",
            "ExpressionAttributeNames": {"#role": "role"},
            "ExpressionAttributeValues": {":owner": s("owner")},
        }
    }


def _transact_as_owner(db: Database, update: dict[str, Any], workspace_id: str, user: str) -> None:
    """Run ``update`` on the workspace row with the owner check; domain errors out."""
    try:
        transact(db, [{"Update": update}, _owner_check(db, workspace_id, user)])
    except ClientError as exc:
        reasons = cancellation_reasons(exc)
        if reasons[1:2] == ["ConditionalCheckFailed"]:
            raise NotAnOwner from exc
        if reasons[:1] == ["ConditionalCheckFailed"]:
            row = db.get(keys.workspace(workspace_id), consistent=True)
            if row is None or LIFECYCLE in row:
                raise Gone from exc
            raise NameMismatch from exc
        raise


# --- rename ------------------------------------------------------------------------------------


def rename(db: Database, workspace_id: str, new_name: str, *, user_id: str) -> None:
    """Give the workspace a new name (its member rows follow through ``copy_name``)."""
    update = {
        "TableName": db.table,
        "Key": keys.workspace(workspace_id),
        "UpdateExpression": "SET #name = :name, renamedAt = :at, renamedBy = :by ADD #version :one",
        "ConditionExpression": f"attribute_exists(PK) AND attribute_not_exists({LIFECYCLE})",
        "ExpressionAttributeNames": {"#name": "name", "#version": NAME_VERSION},
        "ExpressionAttributeValues": {
            ":name": s(new_name),
            ":at": s(now_iso()),
            ":by": s(user_id),
            ":one": n(1),
        },
    }
    _transact_as_owner(db, update, workspace_id, user_id)


def names_pending(row: RawItem | None) -> bool:
    """Whether some member rows may still carry an older name (cheap: the row alone)."""
    if row is None or LIFECYCLE in row:
        return False
    return number(row, NAME_VERSION) > number(row, "namesCopied")


def copy_name(db: Database, workspace_id: str, *, max_rows: int) -> bool:
    """Bring up to ``max_rows`` member rows to the current name; True once all carry it."""
    row = db.get(keys.workspace(workspace_id), consistent=True)
    if not names_pending(row):
        return True
    version, name = number(row, NAME_VERSION), text(row, "name")
    written = 0
    for page in db.query_pages(
        KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
        ExpressionAttributeValues={
            ":pk": s(keys.workspace_pk(workspace_id)),
            ":prefix": s(keys.MEMBER_PREFIX),
        },
        ConsistentRead=True,
    ):
        for member in page.get("Items", []):
            if number(member, MEMBER_NAME_VERSION) >= version:
                continue
            if written >= max_rows:
                return False
            _copy_to(db, member, name, version)
            written += 1
    _mark_copied(db, workspace_id, version)
    return True


def _copy_to(db: Database, member: RawItem, name: str, version: int) -> None:
    # Refused when the member was removed meanwhile, or a newer name got there first.
    update_if(
        db,
        Key={keys.PK: member[keys.PK], keys.SK: member[keys.SK]},
        UpdateExpression="SET workspaceName = :name, #version = :v",
        ConditionExpression="attribute_exists(PK) AND "
        "(attribute_not_exists(#version) OR #version < :v)",
        ExpressionAttributeNames={"#version": MEMBER_NAME_VERSION},
        ExpressionAttributeValues={":name": s(name), ":v": n(version)},
    )


def _mark_copied(db: Database, workspace_id: str, version: int) -> None:
    update_if(
        db,
        Key=keys.workspace(workspace_id),
        UpdateExpression="SET namesCopied = :v",
        ConditionExpression="attribute_exists(PK) AND "
        "(attribute_not_exists(namesCopied) OR namesCopied < :v)",
        ExpressionAttributeValues={":v": n(version)},
    )


# --- delete ------------------------------------------------------------------------------------


def start_deletion(db: Database, workspace_id: str, *, typed_name: str, user_id: str) -> None:
    """Mark the workspace deleted for everyone at once; its rows go in ``delete_slice``."""
    update = {
        "TableName": db.table,
        "Key": keys.workspace(workspace_id),
        "UpdateExpression": "SET #life = :deleting, deletedBy = :by, deletedAt = :at, "
        "deletedRows = :zero",
        "ConditionExpression": "attribute_exists(PK) AND attribute_not_exists(#life) "
        "AND #name = :typed",
        "ExpressionAttributeNames": {"#life": LIFECYCLE, "#name": "name"},
        "ExpressionAttributeValues": {
            ":deleting": s(DELETING),
            ":by": s(user_id),
            ":at": s(now_iso()),
            ":zero": n(0),
            ":typed": s(typed_name),
        },
    }
    _transact_as_owner(db, update, workspace_id, user_id)


def deletion(db: Database, workspace_id: str) -> Deletion | None:
    """The deletion's state, or None when the workspace is not being (or was not) deleted."""
    row = db.get(keys.workspace(workspace_id), consistent=True)
    if row is None or LIFECYCLE not in row:
        return None
    return Deletion(
        workspace_id=workspace_id,
        name=text(row, "name"),
        state=text(row, LIFECYCLE),
        deleted_by=text(row, "deletedBy"),
        deleted_rows=number(row, "deletedRows"),
    )


def _lease(db: Database, workspace_id: str, runner: str, until: float) -> bool:
    """Take (or renew) the deletion's lease; False when another live runner holds it or the
    deletion is finished."""
    return update_if(
        db,
        Key=keys.workspace(workspace_id),
        UpdateExpression="SET deleteRunner = :me, deleteLeaseUntil = :until",
        ConditionExpression="#life = :deleting AND (deleteRunner = :me OR "
        "attribute_not_exists(deleteLeaseUntil) OR deleteLeaseUntil < :now)",
        ExpressionAttributeNames={"#life": LIFECYCLE},
        ExpressionAttributeValues={
            ":me": s(runner),
            ":until": n(int(until)),
            ":now": n(int(time.time())),
            ":deleting": s(DELETING),
        },
    )


def _next_rows(db: Database, workspace_id: str) -> list[RawItem]:
    """The next rows to delete: members while there are any, then everything else but the
    workspace row itself."""
    pk = keys.workspace_pk(workspace_id)
    conditions = [
        ("PK = :pk AND begins_with(SK, :prefix)", {":prefix": s(keys.MEMBER_PREFIX)}),
        ("PK = :pk", {}),
    ]
    for condition, values in conditions:
        page = db.client.query(
            TableName=db.table,
            KeyConditionExpression=condition,
            ExpressionAttributeValues={":pk": s(pk), **values},
            ConsistentRead=True,
            Limit=PAGE + 1,
        )
        rows = [r for r in page.get("Items", []) if r[keys.SK]["S"] != keys.WORKSPACE_SK]
        if rows:
            return rows[:PAGE]
    return []


def _delete_requests(rows: list[RawItem]) -> list[dict[str, Any]]:
    requests = []
    for row in rows:
        requests.append({"DeleteRequest": {"Key": {keys.PK: row[keys.PK], keys.SK: row[keys.SK]}}})
        token_hash = text(row, "tokenHash")
        if row[keys.SK]["S"].startswith(keys.INVITE_PREFIX) and token_hash:
            requests.append({"DeleteRequest": {"Key": keys.invite_token(token_hash)}})
    return requests


def delete_slice(db: Database, workspace_id: str, *, seconds: float) -> Deletion | None:
    """Delete rows for about ``seconds`` (at least one batch), if no one else is; the state
    afterwards. Safe to call from any process, any number of times."""
    runner = uuid.uuid4().hex
    deadline = time.monotonic() + seconds
    if _lease(db, workspace_id, runner, time.time() + LEASE_SECONDS):
        _delete_until(db, workspace_id, runner, deadline)
    return deletion(db, workspace_id)


def _delete_until(db: Database, workspace_id: str, runner: str, deadline: float) -> None:
    while True:
        rows = _next_rows(db, workspace_id)
        if not rows:
            _finish(db, workspace_id, runner)
            return
        requests = _delete_requests(rows)
        for chunk in chunk_requests(requests):
            write_chunk(db, chunk, deadline=time.monotonic() + LEASE_SECONDS / 3)
        if not _progress(db, workspace_id, runner, len(rows)):
            return  # our lease lapsed and someone took over: stop writing
        if time.monotonic() >= deadline:
            _release(db, workspace_id, runner)
            return


def _runner_update(
    db: Database,
    workspace_id: str,
    runner: str,
    expression: str,
    values: dict[str, Any],
    names: dict[str, str] | None = None,
) -> bool:
    """Update the workspace row while ``runner`` still holds the deletion; False if not."""
    extra = {"ExpressionAttributeNames": names} if names else {}
    return update_if(
        db,
        Key=keys.workspace(workspace_id),
        UpdateExpression=expression,
        ConditionExpression="deleteRunner = :me",
        ExpressionAttributeValues={":me": s(runner), **values},
        **extra,
    )


def _progress(db: Database, workspace_id: str, runner: str, count: int) -> bool:
    """Count what went and renew the lease."""
    until = int(time.time() + LEASE_SECONDS)
    return _runner_update(
        db,
        workspace_id,
        runner,
        "ADD deletedRows :k SET deleteLeaseUntil = :until",
        {":k": n(count), ":until": n(until)},
    )


def _release(db: Database, workspace_id: str, runner: str) -> None:
    """Hand the deletion over at once: the next request or thread goes on from here."""
    _runner_update(db, workspace_id, runner, "SET deleteLeaseUntil = :zero", {":zero": n(0)})


def _finish(db: Database, workspace_id: str, runner: str) -> None:
    """Nothing left but the workspace row: keep it as a tombstone for a while."""
    _runner_update(
        db,
        workspace_id,
        runner,
        "SET #life = :deleted, finishedAt = :at, #ttl = :ttl REMOVE deleteLeaseUntil",
        {
            ":deleted": s(DELETED),
            ":at": s(now_iso()),
            ":ttl": n(int(time.time()) + TOMBSTONE_SECONDS),
        },
        {"#life": LIFECYCLE, "#ttl": keys.TTL_ATTRIBUTE},
    )
