"""Invites: a random token, stored only as its SHA-256, with an expiry, used once, revocable
and bound to the e-mail address it was sent to.

Two rows per invite, written in one transaction: ``INVITE#<id>`` in the workspace (listed on
the members page) and ``INVITETOKEN#<sha256>`` pointing at it (found from a link). Accepting
is one transaction: the invite flips from pending to accepted only if it is still pending and
unexpired, and the member row is put only if it does not exist, so two accepts at once make
one membership.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from . import keys
from .accounts import normalise_email, same_email
from .batch import get_many
from .db import (
    CONFLICT_RETRIES,
    Database,
    RawItem,
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
    transact,
)
from .workspaces import Workspace, member_row, workspace_from_row

TOKEN_BYTES = 32  # secrets.token_urlsafe(32): 256 bits
INVITABLE_ROLES = ("member", "admin")
PENDING, ACCEPTED, REVOKED = "pending", "accepted", "revoked"


class InviteUnusable(Exception):
    """Unknown, used, expired or revoked: deliberately one error for all of them."""


class WrongAccount(Exception):
    """The invite was sent to another e-mail address than the signed-in account's."""


class AlreadyMember(Exception):
    """The person is a member of the workspace already."""

    def __init__(self, workspace_id: str) -> None:
        super().__init__(workspace_id)
        self.workspace_id = workspace_id


@dataclass(frozen=True)
class Invite:
    workspace_id: str
    invite_id: str
    email: str
    role: str
    invited_by: str
    created_at: str
    expires_at: int
    state: str
    token_hash: str
    accepted_by: str = ""

    def usable(self, now: float) -> bool:
        return self.state == PENDING and self.expires_at > now


@dataclass(frozen=True)
class Found:
    """What an invite link shows before anyone accepts it."""

    invite: Invite
    workspace: Workspace
    inviter_name: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def invite_from_row(row: RawItem) -> Invite:
    return Invite(
        workspace_id=keys.suffix(row[keys.PK]["S"], keys.WORKSPACE_PREFIX),
        invite_id=keys.suffix(row[keys.SK]["S"], keys.INVITE_PREFIX),
        email=text(row, "email"),
        role=text(row, "role"),
        invited_by=text(row, "invitedBy"),
        created_at=text(row, "createdAt"),
        expires_at=number(row, keys.TTL_ATTRIBUTE),
        state=text(row, "state"),
        token_hash=text(row, "tokenHash"),
        accepted_by=text(row, "acceptedBy"),
    )


def list_invites(db: Database, workspace_id: str) -> list[Invite]:
    rows = query_prefix(db, keys.workspace_pk(workspace_id), keys.INVITE_PREFIX)
    return sorted((invite_from_row(row) for row in rows), key=lambda i: i.created_at)


def pending_invites(db: Database, workspace_id: str, now: float | None = None) -> list[Invite]:
    moment = _now(now)
    return [invite for invite in list_invites(db, workspace_id) if invite.usable(moment)]


def _revoke_action(db: Database, workspace_id: str, invite_id: str) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": db.table,
            "Key": keys.invite(workspace_id, invite_id),
            "UpdateExpression": "SET #state = :revoked, revokedAt = :at",
            "ConditionExpression": "#state = :pending",
            "ExpressionAttributeNames": {"#state": "state"},
            "ExpressionAttributeValues": {
                ":revoked": s(REVOKED),
                ":pending": s(PENDING),
                ":at": s(now_iso()),
            },
        }
    }


def create_invite(
    db: Database,
    workspace_id: str,
    *,
    email: str,
    role: str,
    invited_by: str,
    lifetime_seconds: int,
    now: float | None = None,
) -> tuple[Invite, str, int]:
    """A new invite and its raw token (shown or mailed once, never stored), and how many
    earlier pending invites to the same address it replaced (they are revoked with it)."""
    if role not in INVITABLE_ROLES:
        raise ValueError(f"cannot invite as {role!r}")
    moment = _now(now)
    email = normalise_email(email)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    token_hash = hash_token(token)
    invite_id = new_id()
    expires_at = int(moment + lifetime_seconds)
    invite_row = {
        **keys.invite(workspace_id, invite_id),
        "email": s(email),
        "role": s(role),
        "tokenHash": s(token_hash),
        "invitedBy": s(invited_by),
        "createdAt": s(now_iso()),
        keys.TTL_ATTRIBUTE: n(expires_at),
        "state": s(PENDING),
    }
    pointer_row = {
        **keys.invite_token(token_hash),
        "workspaceId": s(workspace_id),
        "inviteId": s(invite_id),
        keys.TTL_ATTRIBUTE: n(expires_at),
    }
    puts = [put_new(db, invite_row), put_new(db, pointer_row)]
    for attempt in range(CONFLICT_RETRIES):
        replaced = [
            i for i in pending_invites(db, workspace_id, moment) if same_email(i.email, email)
        ]
        revokes = [_revoke_action(db, workspace_id, old.invite_id) for old in replaced]
        try:
            db.client.transact_write_items(TransactItems=puts + revokes)
            break
        except ClientError as exc:
            # An earlier invite was accepted or withdrawn meanwhile: read them again.
            if error_code(exc) != "TransactionCanceledException" or (
                attempt == CONFLICT_RETRIES - 1
            ):
                raise
    return invite_from_row(invite_row), token, len(replaced)


def revoke(db: Database, workspace_id: str, invite_id: str) -> bool:
    """Revoke a pending invite; False when it was not pending (used, revoked, unknown)."""
    try:
        db.client.update_item(**_revoke_action(db, workspace_id, invite_id)["Update"])
    except ClientError as exc:
        if condition_failed(exc):
            return False
        raise
    return True


def _resolve(db: Database, token: str) -> tuple[Invite, RawItem] | None:
    """The invite row a token points at (any state) and its workspace row."""
    if not token or len(token) > 200:
        return None
    token_hash = hash_token(token)
    pointer = db.get(keys.invite_token(token_hash), consistent=True)
    workspace_id = text(pointer, "workspaceId")
    invite_id = text(pointer, "inviteId")
    if not workspace_id or not invite_id:
        return None
    invite_row, workspace_row = get_many(
        db, [keys.invite(workspace_id, invite_id), keys.workspace(workspace_id)]
    )
    if invite_row is None or workspace_row is None:
        return None
    invite = invite_from_row(invite_row)
    if not hmac.compare_digest(invite.token_hash, token_hash):
        return None
    return invite, workspace_row


def find(db: Database, token: str, now: float | None = None) -> Found:
    """The usable invite a link's token stands for, or InviteUnusable (whatever the reason)."""
    resolved = _resolve(db, token)
    if resolved is None or not resolved[0].usable(_now(now)):
        raise InviteUnusable
    invite, workspace_row = resolved
    inviter = db.get(keys.user(invite.invited_by)) if invite.invited_by else None
    return Found(invite, workspace_from_row(workspace_row), text(inviter, "name"))


def _acceptance(db: Database, found: Found, user_id: str, moment: float) -> list[dict[str, Any]]:
    """The invite marked accepted and the membership created, in one transaction's actions."""
    joined = now_iso()
    invite = found.invite
    return [
        {
            "Update": {
                "TableName": db.table,
                "Key": keys.invite(invite.workspace_id, invite.invite_id),
                "UpdateExpression": "SET #state = :accepted, acceptedBy = :user, acceptedAt = :at",
                # Still pending, not expired, and for this address: checked by the write.
                "ConditionExpression": "#state = :pending AND #expires > :now AND email = :email",
                "ExpressionAttributeNames": {"#state": "state", "#expires": keys.TTL_ATTRIBUTE},
                "ExpressionAttributeValues": {
                    ":accepted": s(ACCEPTED),
                    ":pending": s(PENDING),
                    ":user": s(user_id),
                    ":at": s(joined),
                    ":now": n(int(moment)),
                    ":email": s(invite.email),
                },
            }
        },
        put_new(
            db,
            member_row(
                invite.workspace_id,
                user_id,
                role=invite.role,
                email=invite.email,
                workspace_name=found.workspace.name,
                joined_at=joined,
                inviteId=s(invite.invite_id),
                invitedBy=s(invite.invited_by),
            ),
        ),
    ]


def accept(
    db: Database, token: str, *, user_id: str, email: str, now: float | None = None
) -> Found:
    """Make the signed-in person a member with the invite's role, exactly once.

    The person who already used this very invite is told they are a member (AlreadyMember);
    anyone else holding a used link gets the same InviteUnusable as for any bad link.
    """
    try:
        found = find(db, token, now)
    except InviteUnusable:
        resolved = _resolve(db, token)
        if resolved and resolved[0].state == ACCEPTED and resolved[0].accepted_by == user_id:
            raise AlreadyMember(resolved[0].workspace_id) from None
        raise
    invite = found.invite
    if not same_email(invite.email, email):
        raise WrongAccount
    actions = _acceptance(db, found, user_id, _now(now))
    try:
        transact(db, actions)
    except ClientError as exc:
        if error_code(exc) != "TransactionCanceledException":
            raise
        if db.get(keys.member(invite.workspace_id, user_id), consistent=True):
            raise AlreadyMember(invite.workspace_id) from exc
        raise InviteUnusable from exc
    return found
