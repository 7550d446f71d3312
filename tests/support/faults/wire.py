"""DynamoDB's side of the wire, as the fault proxy speaks it: the error codes and bodies it
makes up, how it reads an answer back, and how it cuts a BatchWriteItem in two."""

from __future__ import annotations

import json
import random
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

TARGET_PREFIX = "DynamoDB_20120810."
ERROR_TYPE_PREFIX = "com.amazonaws.dynamodb.v20120810#"
THROTTLING = "ThrottlingException"
PROVISIONED = "ProvisionedThroughputExceededException"
CANCELLED = "TransactionCanceledException"
# What a DynamoDB-compatible server without an operation answers (400) for it.
UNKNOWN_OPERATION = "UnknownOperationException"
INTERNAL_ERROR = "InternalServerError"
# How ``FaultProxy.lose_answer`` loses an answer: the connection closes, or a 500.
LOSE_HOW = ("close", "500")
LOST_MESSAGE = "The answer was lost on the way back (injected by the fault proxy; carried out)"
THROTTLE_MESSAGE = "Rate of requests exceeds the allowed throughput (injected by the fault proxy)"
# What DynamoDB says for each cancellation reason it gives (AWS API reference,
# TransactWriteItems "Errors"); "None" carries no message.
REASON_MESSAGES = {
    "ConditionalCheckFailed": "The conditional request failed",
    "ThrottlingError": (
        "Throughput exceeds the current capacity of your table or index (injected by the "
        "fault proxy)"
    ),
    "ProvisionedThroughputExceeded": (
        "The level of configured provisioned throughput for the table was exceeded (injected "
        "by the fault proxy)"
    ),
    "TransactionConflict": "Transaction is ongoing for the item (injected by the fault proxy)",
    "ValidationError": "One or more parameter values were invalid (injected by the fault proxy)",
}
TRANSACTIONS = ("TransactWriteItems", "TransactGetItems")
# Hop-by-hop headers (RFC 9110 7.6.1) and the ones we recompute.
NOT_FORWARDED = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te"}
NOT_RETURNED = NOT_FORWARDED | {"content-length", "x-amz-crc32", "date", "server"}


class FaultProxyError(RuntimeError):
    """The upstream behaved in a way the proxy's faults cannot be trusted with."""


@dataclass(frozen=True)
class Answer:
    """How the proxy answered one call: the status, the error code (None on success), the
    cancellation reason codes of a cancelled transaction, and whether the proxy made it up."""

    status: int
    code: str | None
    reasons: tuple[str, ...]
    injected: bool

    @property
    def fenced_off(self) -> bool:
        """A transaction refused because its first action's condition failed (for a copy:
        the writer's fence names another run)."""
        return self.code == CANCELLED and self.reasons[:1] == ("ConditionalCheckFailed",)


def answer_of(status: int, body: bytes, injected: bool) -> Answer:
    if status == 200:
        return Answer(status, None, (), injected)
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        return Answer(status, None, (), injected)
    code = str(parsed.get("__type", "")).rpartition("#")[2] or None
    reasons = tuple(str(r.get("Code")) for r in parsed.get("CancellationReasons") or [])
    return Answer(status, code, reasons, injected)


def crc32(body: bytes) -> str:
    return str(zlib.crc32(body) & 0xFFFFFFFF)


def split_batch(
    body: dict[str, Any], keep: float, rng: random.Random
) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """A BatchWriteItem body cut in two: what to forward, and what to leave unprocessed."""
    forwarded: dict[str, list[Any]] = {}
    withheld: dict[str, list[Any]] = {}
    entries = [
        (table, request)
        for table, requests in body.get("RequestItems", {}).items()
        for request in requests
    ]
    if not entries:
        return body, {}
    wanted = round(len(entries) * keep)
    if keep > 0:
        wanted = max(1, wanted)
    if keep < 1 and len(entries) > 1:
        wanted = min(wanted, len(entries) - 1)  # something always comes back unprocessed
    chosen = set(rng.sample(range(len(entries)), wanted))
    for position, (table, request) in enumerate(entries):
        target = forwarded if position in chosen else withheld
        target.setdefault(table, []).append(request)
    return {**body, "RequestItems": forwarded}, withheld


def cancellation_body(reasons: Sequence[str]) -> dict[str, Any]:
    """DynamoDB's JSON error body for a cancelled transaction (as DynamoDB Local sends it:
    ``CancellationReasons`` beside ``__type`` and ``Message``, not inside an error object)."""
    return {
        "__type": ERROR_TYPE_PREFIX + CANCELLED,
        "CancellationReasons": [
            {"Code": code, "Message": REASON_MESSAGES[code]}
            if code in REASON_MESSAGES
            else {"Code": code}
            for code in reasons
        ],
        "Message": (
            "Transaction cancelled, please refer cancellation reasons for specific reasons "
            f"[{', '.join(reasons)}]"
        ),
    }
