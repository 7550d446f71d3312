"""Workspaces and their members: creation, "my workspaces", roles, removal, the owner count.

Every rule two requests could race on is a condition or a transaction: a member's role only
changes from the role the caller saw, and the workspace row's ``ownerCount`` goes down only
while it is above one, in the same TransactWriteItems as the member change. Two owners
demoting each other at once therefore leave one owner, never zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from . import keys
from .batch import get_many
from .changes import CHANGED_AT, tombstone_put
from .db import (
    Database,
    RawItem,
    cancellation_reasons,
    condition_failed,
    error_code,
    n,
    new_id,
    now_iso,
    number,
    put_new,
    query_prefix,
    s,
    text,
)

ROLES = ("member", "admin", "owner")
RANK = {role: position + 1 for position, role in enumerate(ROLES)}
ORIGIN_CREATED = "created"
MAX_NAME = 100
OWNER_COUNT = "ownerCount"


class MembershipChanged(Exception):
    """The member's row is gone or their role changed since the page was read."""


class LastOwner(Exception):
    """The change would leave the workspace without an owner."""


@dataclass(frozen=True)
class Workspace:
    workspace_id: str
    name: str
    origin: str
    created_at: str
    created_by: str
    owner_count: int | None
    # Set while the workspace is being deleted, or once it was ("deleting", "deleted").
    lifecycle: str = ""
    # A rename whose copies on member rows have not all caught up (workspace_lifecycle).
    names_behind: bool = False


@dataclass(frozen=True)
class Member:
    workspace_id: str
    user_id: str
    role: str
    email: str
    joined_at: str
    name: str = ""

    @property
    def rank(self) -> int:
        return rank(self.role)


@dataclass(frozen=True)
class Membership:
    """One line of "my workspaces", read from the ByUser index."""

    workspace_id: str
    workspace_name: str
    role: str


def rank(role: str) -> int:
    """How much a role may do; an unknown role (bad data) may do nothing."""
    return RANK.get(role, 0)


def workspace_from_row(row: RawItem) -> Workspace:
    owner_count = number(row, OWNER_COUNT, -1) if OWNER_COUNT in row else None
    return Workspace(
        workspace_id=keys.suffix(row[keys.PK]["S"], keys.WORKSPACE_PREFIX),
        name=text(row, "name") or "Untitled workspace",
        origin=text(row, "origin"),
        created_at=text(row, "createdAt"),
        created_by=text(row, "createdBy"),
        owner_count=owner_count,
        lifecycle=text(row, "lifecycle"),
        names_behind=number(row, "nameVersion") > number(row, "namesCopied"),
    )


def member_from_row(row: RawItem, name: str = "") -> Member:
    return Member(
        workspace_id=keys.suffix(row[keys.PK]["S"], keys.WORKSPACE_PREFIX),
        user_id=keys.suffix(row[keys.SK]["S"], keys.MEMBER_PREFIX),
        role=text(row, "role"),
        email=text(row, "email"),
        joined_at=text(row, "joinedAt"),
        name=name,
    )


def member_row(
    workspace_id: str,
    user_id: str,
    *,
    role: str,
    email: str,
    workspace_name: str,
    joined_at: str,
    **extra: dict[str, Any],
) -> RawItem:
    """A new member row, with what the ByUser index ("my workspaces") needs."""
    return {
        **keys.member(workspace_id, user_id),
        **keys.member_index_keys(workspace_id, user_id),
        "role": s(role),
        "email": s(email),
        "joinedAt": s(joined_at),
        "workspaceName": s(workspace_name),
        # Created in v2: people's row, which a late v1 write never overwrites.
        CHANGED_AT: s(joined_at),
        **extra,
    }


def create_workspace(db: Database, name: str, user_id: str, email: str) -> Workspace:
    """A new workspace owned by its creator, both rows written together."""
    workspace_id = new_id()
    created = now_iso()
    workspace = {
        **keys.workspace(workspace_id),
        "name": s(name),
        "createdAt": s(created),
        "createdBy": s(user_id),
        "origin": s(ORIGIN_CREATED),
        OWNER_COUNT: n(1),
    }
    owner = member_row(
        workspace_id,
        user_id,
        role="owner",
        email=email,
        workspace_name=name,
        joined_at=created,
    )
    db.client.transact_write_items(TransactItems=[put_new(db, workspace), put_new(db, owner)])
    return workspace_from_row(workspace)


def memberships(db: Database, user_id: str) -> list[Membership]:
    """The person's workspaces from the ByUser index (a Query; the index is eventually
    consistent, so a workspace joined a moment ago may appear a moment later)."""
    rows = db.query_all(
        IndexName=keys.BY_USER_INDEX,
        KeyConditionExpression="#pk = :pk",
        ExpressionAttributeNames={"#pk": keys.GSI1PK},
        ExpressionAttributeValues={":pk": s(keys.by_user_pk(user_id))},
    )
    found = [
        Membership(
            workspace_id=keys.suffix(row[keys.PK]["S"], keys.WORKSPACE_PREFIX),
            workspace_name=text(row, "workspaceName") or "Untitled workspace",
            role=text(row, "role"),
        )
        for row in rows
        if row[keys.SK]["S"].startswith(keys.MEMBER_PREFIX)
    ]
    return sorted(found, key=lambda m: (m.workspace_name.casefold(), m.workspace_id))


def get_workspace(db: Database, workspace_id: str) -> Workspace | None:
    row = db.get(keys.workspace(workspace_id), consistent=True)
    return workspace_from_row(row) if row else None


def get_member(db: Database, workspace_id: str, user_id: str) -> Member | None:
    row = db.get(keys.member(workspace_id, user_id), consistent=True)
    return member_from_row(row) if row else None


def list_members(db: Database, workspace_id: str) -> list[Member]:
    """Every member with their account's name, owners first."""
    rows = query_prefix(db, keys.workspace_pk(workspace_id), keys.MEMBER_PREFIX)
    user_ids = [keys.suffix(row[keys.SK]["S"], keys.MEMBER_PREFIX) for row in rows]
    profiles = get_many(db, [keys.user(user_id) for user_id in user_ids])
    members = [
        member_from_row(row, text(profile, "name"))
        for row, profile in zip(rows, profiles, strict=True)
    ]
    return sorted(members, key=lambda m: (-m.rank, (m.name or m.email).casefold()))


def count_owners(db: Database, workspace_id: str) -> int:
    return sum(1 for member in list_members(db, workspace_id) if member.role == "owner")


def ensure_owner_count(db: Database, workspace: Workspace) -> None:
    """Give a workspace that lacks ``ownerCount`` (an older row) one, counted once.

    Every transaction that changes the number of owners requires the attribute to exist, so
    none can run between the count and this write; racing initialisers write the same value.
    """
    if workspace.owner_count is not None:
        return
    owners = count_owners(db, workspace.workspace_id)
    try:
        db.client.update_item(
            TableName=db.table,
            Key=keys.workspace(workspace.workspace_id),
            UpdateExpression="SET #count = :count",
            ConditionExpression="attribute_exists(PK) AND attribute_not_exists(#count)",
            ExpressionAttributeNames={"#count": OWNER_COUNT},
            ExpressionAttributeValues={":count": n(owners)},
        )
    except ClientError as exc:
        if not condition_failed(exc):
            raise


def _owner_count_update(db: Database, workspace_id: str, delta: int) -> dict[str, Any]:
    adding = delta > 0
    return {
        "Update": {
            "TableName": db.table,
            "Key": keys.workspace(workspace_id),
            "UpdateExpression": f"SET #count = #count {'+' if adding else '-'} :one",
            # Adding needs the counter (older rows get it from ensure_owner_count); removing
            # never goes below one owner: this is the line that settles races between owners.
            "ConditionExpression": "attribute_exists(#count)" if adding else "#count > :one",
            "ExpressionAttributeNames": {"#count": OWNER_COUNT},
            "ExpressionAttributeValues": {":one": n(1)},
        }
    }


def _run(db: Database, actions: list[dict[str, Any]], *, owner_check_at: int | None) -> None:
    """Run one write (or a transaction) and turn failed conditions into domain errors."""
    try:
        if len(actions) == 1:
            ((kind, params),) = actions[0].items()
            call = {"Update": db.client.update_item, "Delete": db.client.delete_item}[kind]
            call(**params)
        else:
            db.client.transact_write_items(TransactItems=actions)
    except ClientError as exc:
        code = error_code(exc)
        if condition_failed(exc):
            raise MembershipChanged from exc
        if code == "TransactionCanceledException":
            reasons = cancellation_reasons(exc)
            if reasons and reasons[0] == "ConditionalCheckFailed":
                raise MembershipChanged from exc
            if owner_check_at is not None and len(reasons) > owner_check_at:
                if reasons[owner_check_at] == "ConditionalCheckFailed":
                    raise LastOwner from exc
        raise


def change_role(
    db: Database, workspace: Workspace, user_id: str, seen_role: str, new_role: str
) -> None:
    """Set a member's role, if it is still ``seen_role``; keeps at least one owner."""
    if new_role not in ROLES:
        raise ValueError(f"unknown role {new_role!r}")
    if new_role == seen_role:
        return
    update = {
        "Update": {
            "TableName": db.table,
            "Key": keys.member(workspace.workspace_id, user_id),
            "UpdateExpression": "SET #role = :new, roleChangedAt = :at, #changed = :at",
            "ConditionExpression": "attribute_exists(PK) AND #role = :seen",
            "ExpressionAttributeNames": {"#role": "role", "#changed": CHANGED_AT},
            "ExpressionAttributeValues": {
                ":new": s(new_role),
                ":seen": s(seen_role),
                ":at": s(now_iso()),
            },
        }
    }
    delta = (new_role == "owner") - (seen_role == "owner")
    if delta:
        ensure_owner_count(db, workspace)
        actions = [update, _owner_count_update(db, workspace.workspace_id, delta)]
    else:
        actions = [update]
    _run(db, actions, owner_check_at=1 if delta < 0 else None)


def remove_member(db: Database, workspace: Workspace, user_id: str, seen_role: str) -> None:
    """Delete a membership, if its role is still ``seen_role``; the last owner stays. The
    member's tombstone is written with it (a late v1 write never brings them back)."""
    key = keys.member(workspace.workspace_id, user_id)
    delete = {
        "Delete": {
            "TableName": db.table,
            "Key": key,
            "ConditionExpression": "attribute_exists(PK) AND #role = :seen",
            "ExpressionAttributeNames": {"#role": "role"},
            "ExpressionAttributeValues": {":seen": s(seen_role)},
        }
    }
    tombstone = tombstone_put(db, key, now_iso())
    if seen_role == "owner":
        ensure_owner_count(db, workspace)
        actions = [delete, _owner_count_update(db, workspace.workspace_id, -1), tombstone]
        _run(db, actions, owner_check_at=1)
    else:
        _run(db, [delete, tombstone], owner_check_at=None)


# --- who may do what ---------------------------------------------------------------------------


def may_change_role(actor: Member, target: Member, new_role: str) -> bool:
    """Owners may set any role; admins manage members and admins but never touch owners or
    make one; members manage nobody. (The last-owner rule is enforced by the write itself.)"""
    if new_role not in ROLES:
        return False
    if actor.role == "owner":
        return True
    if actor.role == "admin":
        return target.role != "owner" and new_role != "owner"
    return False


def may_remove(actor: Member, target: Member) -> bool:
    """Anyone may leave; owners may remove anyone; admins may remove non-owners."""
    if actor.user_id == target.user_id:
        return True
    if actor.role == "owner":
        return True
    if actor.role == "admin":
        return target.role != "owner"
    return False


def invitable_roles(actor: Member) -> tuple[str, ...]:
    """Owners invite members and admins; admins invite members; nobody invites an owner
    (an owner promotes a member once they have joined)."""
    if actor.role == "owner":
        return ("member", "admin")
    if actor.role == "admin":
        return ("member",)
    return ()
