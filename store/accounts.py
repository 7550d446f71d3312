"""Accounts (shared with v1), sessions that were signed out, and preferences (failed
sign-ins: signin_limits.py)."""

from __future__ import annotations

import hmac
import time
import unicodedata
from dataclasses import dataclass

from botocore.exceptions import ClientError

from . import keys
from .batch import get_many
from .db import (
    Database,
    RawItem,
    cancellation_reasons,
    condition_failed,
    n,
    new_id,
    now_iso,
    number,
    put_new,
    s,
    text,
    transact,
)


class EmailTaken(Exception):
    """Another account already uses this e-mail address."""


# Set on accounts registered since addresses are confirmed; a v1 row never has it, so
# absence means confirmed (issue 11).
UNCONFIRMED = "emailUnconfirmed"
# Bumped to sign out every session at once; tokens carry the value they were issued under
# ("gen"), and a token whose value differs is signed out. Absent means 0.
SESSION_GENERATION = "sessionGeneration"


@dataclass(frozen=True)
class Account:
    user_id: str
    email: str
    name: str
    password_hash: str
    confirmed: bool = True
    session_generation: int = 0


def normalise_email(address: str) -> str:
    """The one spelling of an address that is stored, used in keys and compared.

    Unicode NFC so that ``jörg`` typed as one code point or as ``o`` plus a combining mark is
    one address; ``lower()`` rather than ``casefold()`` because v1 stored ``lower()`` of its
    (ASCII) addresses, and casefold would turn ``ß`` into ``ss`` for nobody's benefit.
    """
    return unicodedata.normalize("NFC", address.strip().lower())


def same_email(left: str, right: str) -> bool:
    """Whether two addresses are one, in constant time (compare_digest refuses non-ASCII str)."""
    return hmac.compare_digest(
        normalise_email(left).encode("utf-8"), normalise_email(right).encode("utf-8")
    )


def account_from_row(user_id: str, row: RawItem) -> Account:
    return Account(
        user_id=user_id,
        email=text(row, "email"),
        name=text(row, "name"),
        password_hash=text(row, "passwordHash"),
        confirmed=not row.get(UNCONFIRMED, {}).get("BOOL", False),
        session_generation=number(row, SESSION_GENERATION),
    )


_account = account_from_row


def create_account(db: Database, email: str, name: str, password_hash: str) -> Account:
    """Create the USER and EMAIL rows together; one account per e-mail even under races."""
    user_id = new_id()
    email = normalise_email(email)
    profile: RawItem = {
        **keys.user(user_id),
        "email": s(email),
        "name": s(name),
        "passwordHash": s(password_hash),
        "createdAt": s(now_iso()),
        UNCONFIRMED: {"BOOL": True},
    }
    actions = [put_new(db, {**keys.email(email), "userId": s(user_id)}), put_new(db, profile)]
    try:
        transact(db, actions)
    except ClientError as exc:
        if cancellation_reasons(exc)[:1] == ["ConditionalCheckFailed"]:
            raise EmailTaken(email) from exc
        raise
    return _account(user_id, profile)


def find_by_email(db: Database, email: str) -> Account | None:
    pointer = db.get(keys.email(normalise_email(email)), consistent=True)
    user_id = text(pointer, "userId")
    if not user_id:
        return None
    return get_account(db, user_id)


def get_account(db: Database, user_id: str) -> Account | None:
    row = db.get(keys.user(user_id), consistent=True)
    return _account(user_id, row) if row else None


def replace_password_hash(db: Database, user_id: str, old_hash: str, new_hash: str) -> bool:
    """Upgrade a stored hash, unless it changed meanwhile (then the newer one wins)."""
    try:
        db.client.update_item(
            TableName=db.table,
            Key=keys.user(user_id),
            UpdateExpression="SET passwordHash = :new",
            ConditionExpression="passwordHash = :old",
            ExpressionAttributeValues={":new": s(new_hash), ":old": s(old_hash)},
        )
        return True
    except ClientError as exc:
        if condition_failed(exc):
            return False
        raise


# --- signed-out sessions ----------------------------------------------------------------------


def revoke_session(db: Database, session_id: str, until_epoch: int) -> None:
    """Remember a signed-out session until its last token would have expired anyway."""
    db.client.put_item(
        TableName=db.table,
        Item={
            **keys.revoked_session(session_id),
            keys.TTL_ATTRIBUTE: n(int(until_epoch)),
            "revokedAt": s(now_iso()),
        },
    )


class SessionRevoked(Exception):
    """The session was signed out: its revocation row is still live."""


def session_rows(
    db: Database, session_id: str, extra: list[keys.Key]
) -> tuple[bool, list[RawItem | None]]:
    """Whether the session was revoked, and the extra rows, in one strongly consistent read."""
    rows = get_many(db, [keys.revoked_session(session_id), *extra])
    revoked = rows[0] is not None and number(rows[0], keys.TTL_ATTRIBUTE) > time.time()
    return revoked, rows[1:]


# --- preferences -------------------------------------------------------------------------------


def remember_workspace(db: Database, user_id: str, workspace_id: str) -> None:
    db.client.put_item(
        TableName=db.table,
        Item={**keys.user_prefs(user_id), "lastWorkspaceId": s(workspace_id)},
    )


def last_workspace(db: Database, user_id: str) -> str | None:
    return text(db.get(keys.user_prefs(user_id)), "lastWorkspaceId") or None
