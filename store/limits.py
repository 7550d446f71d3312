"""Fixed-window rate limits shared by every server process: one atomic counter per subject
and window, so two requests at once can never both take the last allowance."""

from __future__ import annotations

import time

from . import keys
from .db import Database, n, number


def take(db: Database, kind: str, subject: str, *, limit: int, window_seconds: int) -> int:
    """Count one use of ``kind`` for ``subject``; 0 when within ``limit`` for this window,
    else the seconds until the window ends (the caller's Retry-After)."""
    at = time.time()
    window = int(at // window_seconds)
    response = db.client.update_item(
        TableName=db.table,
        Key=keys.rate_limit(kind, subject, window),
        # ADD is atomic: the count returned already includes this use.
        UpdateExpression="ADD hits :one SET #ttl = :ttl",
        ExpressionAttributeNames={"#ttl": keys.TTL_ATTRIBUTE},
        ExpressionAttributeValues={":one": n(1), ":ttl": n((window + 2) * window_seconds)},
        ReturnValues="UPDATED_NEW",
    )
    if number(response["Attributes"], "hits") <= limit:
        return 0
    return int((window + 1) * window_seconds - at) + 1
