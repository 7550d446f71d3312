"""Single-use, expiring tokens mailed to a person: address confirmation, a new address's
confirmation, password reset (OWASP Forgot Password cheat sheet).

The raw token (256 random bits) only ever exists in the mail; the table keeps its SHA-256,
keyed by purpose, so a token made for one purpose is unknown to every other. A token is
spent by deleting its row in the same transaction as the change it allows, on condition
that it still exists, is unexpired and names the same account: two uses at once make one.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from . import keys
from .db import Database, RawItem, n, now_iso, number, s, text

TOKEN_BYTES = 32
CONFIRM, EMAIL_CHANGE, RESET = "confirm", "emailchange", "reset"
PURPOSES = (CONFIRM, EMAIL_CHANGE, RESET)
MAX_TOKEN_LENGTH = 200


@dataclass(frozen=True)
class Ticket:
    """What a live token stands for."""

    purpose: str
    token_hash: str
    user_id: str
    email: str  # the address the mail went to (for a change: the new one)
    expires_at: int


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(db: Database, purpose: str, *, user_id: str, email: str, lifetime_seconds: int) -> str:
    """Store a new token's hash and return the raw token (for the mail only)."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    db.client.put_item(
        TableName=db.table,
        Item={
            **keys.account_token(purpose, hash_token(token)),
            "userId": s(user_id),
            "email": s(email),
            "createdAt": s(now_iso()),
            keys.TTL_ATTRIBUTE: n(int(time.time() + lifetime_seconds)),
        },
    )
    return token


def _ticket(purpose: str, token_hash: str, row: RawItem) -> Ticket:
    return Ticket(
        purpose=purpose,
        token_hash=token_hash,
        user_id=text(row, "userId"),
        email=text(row, "email"),
        expires_at=number(row, keys.TTL_ATTRIBUTE),
    )


def find(db: Database, purpose: str, token: str) -> Ticket | None:
    """The live ticket a token stands for; None for unknown, used or expired alike."""
    if not token or len(token) > MAX_TOKEN_LENGTH or purpose not in PURPOSES:
        return None
    token_hash = hash_token(token)
    row = db.get(keys.account_token(purpose, token_hash), consistent=True)
    # TTL deletes rows up to ~48 h late: the clock decides.
    if row is None or number(row, keys.TTL_ATTRIBUTE) <= time.time():
        return None
    return _ticket(purpose, token_hash, row)


def spend_action(db: Database, ticket: Ticket) -> dict[str, Any]:
    """A transaction action that deletes the token, only while it is live and the same one."""
    return {
        "Delete": {
            "TableName": db.table,
            "Key": keys.account_token(ticket.purpose, ticket.token_hash),
            "ConditionExpression": "attribute_exists(PK) AND #expires > :now AND userId = :user",
            "ExpressionAttributeNames": {"#expires": keys.TTL_ATTRIBUTE},
            "ExpressionAttributeValues": {
                ":now": n(int(time.time())),
                ":user": s(ticket.user_id),
            },
        }
    }
