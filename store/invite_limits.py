"""How many invites a person and a workspace may send: counters shared by every process.

Each limit is a window (an hour, a day) with an allowance. Its counter is one row per window
(``INVITERATE#<scope>#<id>`` / ``WINDOW#<seconds>#<n>``, removed by TTL after the window),
raised by ``ADD`` only while it is below the allowance. The counters of one invite go into
the same TransactWriteItems as the invite itself (``store/invites.create_invite``), so an
invite is counted exactly when it is made: a refused one costs nothing, and two processes
racing for the last allowance cannot both get it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import keys
from .db import Database, n

PERSON, WORKSPACE = "person", "workspace"


@dataclass(frozen=True)
class Limit:
    scope: str
    subject_id: str
    window_seconds: int
    allowed: int

    def window(self, now: float) -> int:
        return int(now // self.window_seconds)

    def seconds_left(self, now: float) -> int:
        return max(1, math.ceil((self.window(now) + 1) * self.window_seconds - now))


class RateLimited(Exception):
    """An invite limit is used up; ``retry_after`` seconds until its window ends."""

    def __init__(self, limit: Limit, retry_after: int) -> None:
        super().__init__(limit.scope)
        self.limit = limit
        self.retry_after = retry_after


def limits_for(config: Mapping[str, Any], workspace_id: str, user_id: str) -> list[Limit]:
    """The limits one invite by ``user_id`` in ``workspace_id`` counts against."""
    per_person: Iterable[tuple[int, int]] = config.get("INVITE_LIMITS_PER_PERSON", ())
    per_workspace: Iterable[tuple[int, int]] = config.get("INVITE_LIMITS_PER_WORKSPACE", ())
    return [
        *(Limit(PERSON, user_id, int(w), int(a)) for w, a in per_person),
        *(Limit(WORKSPACE, workspace_id, int(w), int(a)) for w, a in per_workspace),
    ]


def count_actions(db: Database, limits: Sequence[Limit], now: float) -> list[dict[str, Any]]:
    """One transaction action per limit: add one to its window, if still below allowance."""
    return [
        {
            "Update": {
                "TableName": db.table,
                "Key": keys.invite_rate(
                    limit.scope, limit.subject_id, limit.window_seconds, limit.window(now)
                ),
                "UpdateExpression": "ADD #count :one SET #ttl = :ttl",
                "ConditionExpression": "attribute_not_exists(#count) OR #count < :allowed",
                "ExpressionAttributeNames": {"#count": "invites", "#ttl": keys.TTL_ATTRIBUTE},
                "ExpressionAttributeValues": {
                    ":one": n(1),
                    ":allowed": n(limit.allowed),
                    ":ttl": n((limit.window(now) + 2) * limit.window_seconds),
                },
            }
        }
        for limit in limits
    ]


def refusal(
    limits: Sequence[Limit], reasons: Sequence[str | None], now: float
) -> RateLimited | None:
    """The limit that refused a transaction (``reasons`` are its count actions' cancellation
    codes, in order), as the error to raise; None when none of them did. With several used
    up, the one that lasts longest decides when to come back."""
    refused = [
        limit
        for limit, reason in zip(limits, reasons, strict=False)
        if reason == "ConditionalCheckFailed"
    ]
    if not refused:
        return None
    worst = max(refused, key=lambda limit: limit.seconds_left(now))
    return RateLimited(worst, worst.seconds_left(now))
