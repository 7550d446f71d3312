"""Deleting an account: refused while it is the last owner of a workspace; otherwise its
memberships go, then its e-mail pointer and profile (together), then its other rows.

Deleting the profile is what signs every session out: the per-request check
(``store.sessions.check``) treats a session whose profile is gone as signed out.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from . import keys
from .accounts import Account
from .db import Database, cancellation_reasons, s, transact
from .workspaces import (
    LastOwner,
    MembershipChanged,
    count_owners,
    get_workspace,
    memberships,
    remove_member,
)


class LastOwnerOf(Exception):
    """The account is the only owner of these workspaces (their names)."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(", ".join(names))
        self.names = names


def sole_ownerships(db: Database, user_id: str) -> list[str]:
    """Names of the workspaces the person is the only owner of."""
    names = []
    for membership in memberships(db, user_id):
        if membership.role != "owner":
            continue
        workspace = get_workspace(db, membership.workspace_id)
        if workspace is None:
            continue
        # Read only (the account page asks on GET): an older row without ownerCount is
        # counted from its members instead of being given the attribute here.
        owners = workspace.owner_count
        if owners is None:
            owners = count_owners(db, workspace.workspace_id)
        if owners <= 1:
            names.append(workspace.name)
    return sorted(names, key=str.casefold)


def _leave_workspaces(db: Database, user_id: str) -> None:
    for membership in memberships(db, user_id):
        workspace = get_workspace(db, membership.workspace_id)
        if workspace is None:
            continue
        try:
            remove_member(db, workspace, user_id, membership.role)
        except LastOwner:
            # Another owner left between the check and now: the write refused, say where.
            raise LastOwnerOf([workspace.name]) from None
        except MembershipChanged:
            continue  # removed or re-roled meanwhile; the next pass sees what is left


def delete_account(db: Database, account: Account) -> None:
    """Delete the account, or raise LastOwnerOf naming the workspaces that block it."""
    blocking = sole_ownerships(db, account.user_id)
    if blocking:
        raise LastOwnerOf(blocking)
    _leave_workspaces(db, account.user_id)
    try:
        transact(
            db,
            [
                {
                    "Delete": {
                        "TableName": db.table,
                        "Key": keys.email(account.email),
                        "ConditionExpression": "userId = :user",
                        "ExpressionAttributeValues": {":user": s(account.user_id)},
                    }
                },
                {"Delete": {"TableName": db.table, "Key": keys.user(account.user_id)}},
            ],
        )
    except ClientError as exc:
        if cancellation_reasons(exc)[:1] != ["ConditionalCheckFailed"]:
            raise
        # The pointer names someone else (bad data): still delete the profile.
        db.client.delete_item(TableName=db.table, Key=keys.user(account.user_id))
    rest = db.query_all(
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": s(keys.USER_PREFIX + account.user_id)},
        ConsistentRead=True,
    )
    for row in rest:
        db.client.delete_item(
            TableName=db.table, Key={keys.PK: row[keys.PK], keys.SK: row[keys.SK]}
        )
