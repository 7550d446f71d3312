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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from . import invite_limits, keys
from .accounts import normalise_email, same_email
from .batch import get_many
from .db import (
    CONFLICT_RETRIES,
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
    transact,
)
from .invite_limits import Limit
from .workspaces import Workspace, member_row, workspace_from_row

TOKEN_BYTES = 32  # secrets.token_urlsafe(32): 256 bits
INVITABLE_ROLES = ("member", "admin")
PENDING, ACCEPTED, REVOKED = "pending", "accepted", "revoked"
INVITER_LEFT = "inviter-left"  # revokedReason of invites whose maker's membership ended


class InviteUnusable(Exception):
    """Unknown, used, expired or revoked: deliberately one error for all of them."""


class InviterGone(InviteUnusable):
    """The person who made the invite is no longer a member: their invites died with it."""


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
    revoked_reason: str = ""

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
        revoked_reason=text(row, "revokedReason"),
    )


def list_invites(db: Database, workspace_id: str) -> list[Invite]:
    rows = query_prefix(db, keys.workspace_pk(workspace_id), keys.INVITE_PREFIX)
    return sorted((invite_from_row(row) for row in rows), key=lambda i: i.created_at)


def pending_invites(db: Database, workspace_id: str, now: float | None = None) -> list[Invite]:
    moment = _now(now)
    return [invite for invite in list_invites(db, workspace_id) if invite.usable(moment)]


def _revoke_action(
    db: Database, workspace_id: str, invite_id: str, reason: str = "withdrawn"
) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": db.table,
            "Key": keys.invite(workspace_id, invite_id),
            "UpdateExpression": "SET #state = :revoked, revokedAt = :at, revokedReason = :why",
            "ConditionExpression": "#state = :pending",
            "ExpressionAttributeNames": {"#state": "state"},
            "ExpressionAttributeValues": {
                ":revoked": s(REVOKED),
                ":pending": s(PENDING),
                ":at": s(now_iso()),
                ":why": s(reason),
            },
        }
    }


class TooManyPending(Exception):
    """The workspace holds as many pending invites as it may."""


def create_invite(
    db: Database,
    workspace_id: str,
    *,
    email: str,
    role: str,
    invited_by: str,
    lifetime_seconds: int,
    limits: Sequence[Limit] = (),
    max_pending: int | None = None,
    now: float | None = None,
) -> tuple[Invite, str, int]:
    """A new invite and its raw token (shown or mailed once, never stored), and how many
    earlier pending invites to the same address it replaced (they are revoked with it).

    The invite counts against ``limits`` in the same transaction (RateLimited when one is
    used up, and then nothing is written). ``max_pending`` is checked on the consistent read
    of the pending invites made here anyway: requests racing at the cap can pass it by one
    each, which the counted limits keep small.
    """
    if role not in INVITABLE_ROLES:
        raise ValueError(f"cannot invite as {role!r}")
    moment = _now(now)
    email = normalise_email(email)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    invite_row, pointer_row = _invite_rows(
        workspace_id, email, role, invited_by, hash_token(token), int(moment + lifetime_seconds)
    )
    fixed = [put_new(db, invite_row), put_new(db, pointer_row)]
    fixed += invite_limits.count_actions(db, limits, moment)
    for attempt in range(CONFLICT_RETRIES):
        pending = pending_invites(db, workspace_id, moment)
        replaced = [i for i in pending if same_email(i.email, email)]
        if max_pending is not None and len(pending) - len(replaced) >= max_pending:
            raise TooManyPending
        revokes = [_revoke_action(db, workspace_id, old.invite_id) for old in replaced]
        try:
            db.client.transact_write_items(TransactItems=fixed + revokes)
            break
        except ClientError as exc:
            limited = invite_limits.refusal(limits, cancellation_reasons(exc)[2:], moment)
            if limited is not None:
                raise limited from exc
            # An earlier invite was accepted or withdrawn meanwhile: read them again.
            if error_code(exc) != "TransactionCanceledException" or (
                attempt == CONFLICT_RETRIES - 1
            ):
                raise
    return invite_from_row(invite_row), token, len(replaced)


def _invite_rows(
    workspace_id: str, email: str, role: str, invited_by: str, token_hash: str, expires_at: int
) -> tuple[RawItem, RawItem]:
    invite_id = new_id()
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
    return invite_row, pointer_row


def revoke(db: Database, workspace_id: str, invite_id: str) -> bool:
    """Revoke a pending invite; False when it was not pending (used, revoked, unknown)."""
    try:
        db.client.update_item(**_revoke_action(db, workspace_id, invite_id)["Update"])
    except ClientError as exc:
        if condition_failed(exc):
            return False
        raise
    return True


def withdraw_invites_of(db: Database, workspace_id: str, user_id: str) -> int:
    """Revoke the pending invites ``user_id`` made, once they are no longer a member; how
    many. Accepting also checks the inviter's membership (``accept``), so an invite this
    misses (made a moment before, or a crash in between) still cannot be used."""
    withdrawn = 0
    for invite in list_invites(db, workspace_id):
        if invite.state == PENDING and invite.invited_by == user_id:
            action = _revoke_action(db, workspace_id, invite.invite_id, INVITER_LEFT)
            try:
                db.client.update_item(**action["Update"])
                withdrawn += 1
            except ClientError as exc:
                if not condition_failed(exc):
                    raise
    return withdrawn


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
    if resolved is not None and resolved[0].revoked_reason == INVITER_LEFT:
        raise InviterGone
    if resolved is None or not resolved[0].usable(_now(now)) or "lifecycle" in resolved[1]:
        raise InviteUnusable  # (a workspace being deleted takes its invites with it)
    invite, workspace_row = resolved
    inviter, still_member = None, True
    if invite.invited_by:
        inviter, membership = get_many(
            db,
            [keys.user(invite.invited_by), keys.member(invite.workspace_id, invite.invited_by)],
        )
        still_member = membership is not None
    if not still_member:
        raise InviterGone
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
        {
            "ConditionCheck": {  # not being deleted: no member row after its members went
                "TableName": db.table,
                "Key": keys.workspace(invite.workspace_id),
                "ConditionExpression": "attribute_exists(PK) AND attribute_not_exists(lifecycle)",
            }
        },
        # Last, so its cancellation reason has a fixed place (accept reads index 3).
        *_inviter_still_member(db, invite, user_id),
    ]


def _inviter_still_member(db: Database, invite: Invite, user_id: str) -> list[dict[str, Any]]:
    """The invite dies with its maker's membership (see withdraw_invites_of). A maker who
    accepts their own invite is already a member: the membership's put_new refuses that,
    and a transaction may not name that row twice."""
    if not invite.invited_by or invite.invited_by == user_id:
        return []
    return [
        {
            "ConditionCheck": {
                "TableName": db.table,
                "Key": keys.member(invite.workspace_id, invite.invited_by),
                "ConditionExpression": "attribute_exists(PK)",
            }
        }
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
        if cancellation_reasons(exc)[3:4] == ["ConditionalCheckFailed"]:
            raise InviterGone from exc
        if db.get(keys.member(invite.workspace_id, user_id), consistent=True):
            raise AlreadyMember(invite.workspace_id) from exc
        raise InviteUnusable from exc
    return found
