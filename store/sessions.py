"""A signed-in person's sessions, as the account page lists them, and the per-request check.

Each sign-in writes ``USER#<id>/SESSION#<sid>`` (device, signed in when, last seen; TTL at the
session's absolute end). The request path does not read those rows: it reads the session's
revocation row and the account's profile in the page's one BatchGetItem. A session is live
while it has no live revocation row, the profile exists (the account was not deleted) and
the profile's ``sessionGeneration`` equals the token's: bumping it signs out every session
at once, including ones signed in before these rows existed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from . import keys
from .accounts import SESSION_GENERATION, Account, SessionRevoked, account_from_row
from .batch import get_many
from .db import Database, RawItem, condition_failed, n, now_iso, number, query_prefix, s, text

MAX_USER_AGENT = 300


@dataclass(frozen=True)
class SessionRef:
    """What a session token names: the session, its account and the generation it had."""

    session_id: str
    user_id: str
    generation: int


@dataclass(frozen=True)
class SessionInfo:
    session_id: str
    user_agent: str
    signed_in_at: str
    last_seen_at: str


def check(db: Database, ref: SessionRef, extra: list[keys.Key]) -> tuple[Account, list[Any]]:
    """The session's account and the extra rows, in one strongly consistent read; raises
    SessionRevoked for a signed-out session (one by one, or all at once) or a deleted account."""
    rows = get_many(db, [keys.revoked_session(ref.session_id), keys.user(ref.user_id), *extra])
    revocation, profile = rows[0], rows[1]
    if revocation is not None and number(revocation, keys.TTL_ATTRIBUTE) > time.time():
        raise SessionRevoked
    if profile is None or number(profile, SESSION_GENERATION) != ref.generation:
        raise SessionRevoked
    return account_from_row(ref.user_id, profile), rows[2:]


def record(db: Database, ref: SessionRef, *, user_agent: str, until_epoch: int) -> None:
    """Remember a new session under its account, until it would end anyway."""
    now = now_iso()
    db.client.put_item(
        TableName=db.table,
        Item={
            **keys.user_session(ref.user_id, ref.session_id),
            "userAgent": s(user_agent[:MAX_USER_AGENT]),
            "signedInAt": s(now),
            "lastSeenAt": s(now),
            "generation": n(ref.generation),
            keys.TTL_ATTRIBUTE: n(int(until_epoch)),
        },
    )


def touch(db: Database, ref: SessionRef) -> None:
    """Note that the session was used (called when its token is refreshed, every few
    minutes at most, not on every request)."""
    try:
        db.client.update_item(
            TableName=db.table,
            Key=keys.user_session(ref.user_id, ref.session_id),
            UpdateExpression="SET lastSeenAt = :now",
            ConditionExpression="attribute_exists(PK)",
            ExpressionAttributeValues={":now": s(now_iso())},
        )
    except ClientError as exc:
        if not condition_failed(exc):  # a session from before these rows: nothing to touch
            raise


def _info(row: RawItem) -> SessionInfo:
    return SessionInfo(
        session_id=keys.suffix(row[keys.SK]["S"], keys.USER_SESSION_PREFIX),
        user_agent=text(row, "userAgent"),
        signed_in_at=text(row, "signedInAt"),
        last_seen_at=text(row, "lastSeenAt"),
    )


def list_sessions(db: Database, account: Account) -> list[SessionInfo]:
    """The account's live sessions, most recently used first."""
    rows = query_prefix(db, keys.USER_PREFIX + account.user_id, keys.USER_SESSION_PREFIX)
    now = time.time()
    live = [
        _info(row)
        for row in rows
        if number(row, keys.TTL_ATTRIBUTE) > now
        and number(row, "generation") == account.session_generation
    ]
    return sorted(live, key=lambda info: info.last_seen_at, reverse=True)


def sign_out_one(db: Database, user_id: str, session_id: str, until_epoch: int) -> bool:
    """Sign one of the account's sessions out; False when it is not the account's."""
    listed = db.get(keys.user_session(user_id, session_id), consistent=True)
    if listed is None:
        return False
    db.client.transact_write_items(
        TransactItems=[
            {
                "Put": {
                    "TableName": db.table,
                    "Item": {
                        **keys.revoked_session(session_id),
                        keys.TTL_ATTRIBUTE: n(int(until_epoch)),
                        "revokedAt": s(now_iso()),
                    },
                }
            },
            {"Delete": {"TableName": db.table, "Key": keys.user_session(user_id, session_id)}},
        ]
    )
    return True


def forget(db: Database, user_id: str, session_id: str) -> None:
    """Drop a session's listing row (it signed out)."""
    db.client.delete_item(TableName=db.table, Key=keys.user_session(user_id, session_id))


def next_generation(db: Database, user_id: str) -> int:
    """Sign out every session of the account at once; the new generation for the one the
    caller re-issues, if any."""
    response = db.client.update_item(
        TableName=db.table,
        Key=keys.user(user_id),
        UpdateExpression="ADD #gen :one",
        ConditionExpression="attribute_exists(PK)",
        ExpressionAttributeNames={"#gen": SESSION_GENERATION},
        ExpressionAttributeValues={":one": n(1)},
        ReturnValues="UPDATED_NEW",
    )
    return number(response["Attributes"], SESSION_GENERATION)


def keep_only(db: Database, user_id: str, keep: SessionRef | None) -> None:
    """After a generation bump: drop the other sessions' rows and move ``keep`` (the session
    re-issued under the new generation) along."""
    rows = query_prefix(db, keys.USER_PREFIX + user_id, keys.USER_SESSION_PREFIX)
    for row in rows:
        info = _info(row)
        if keep is not None and info.session_id == keep.session_id:
            db.client.update_item(
                TableName=db.table,
                Key=keys.user_session(user_id, info.session_id),
                UpdateExpression="SET generation = :gen",
                ExpressionAttributeValues={":gen": n(keep.generation)},
            )
        else:
            forget(db, user_id, info.session_id)
