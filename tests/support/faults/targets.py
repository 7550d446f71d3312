"""What a fault is set on: an operation, or an operation plus a predicate on its JSON body."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from store import keys


@dataclass(frozen=True)
class Target:
    """Calls of ``operation`` whose JSON body satisfies ``where`` (all of them when None).
    ``name`` identifies the target in counts and rules; it defaults to the operation."""

    operation: str
    name: str = ""
    where: Callable[[dict[str, Any]], bool] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.operation)
        if self.where is not None and self.name == self.operation:
            raise ValueError("a target with a predicate needs a name of its own")

    def matches(self, operation: str, body: dict[str, Any] | None) -> bool:
        if operation != self.operation:
            return False
        if self.where is None:
            return True
        try:
            return body is not None and bool(self.where(body))
        except (AttributeError, KeyError, TypeError):
            return False


def is_fenced_copy(body: dict[str, Any]) -> bool:
    """Whether a TransactWriteItems body is one of the migration's copies: it checks a
    writer's fence row (claim, takeover and flag transactions do not)."""
    return any(
        action.get("ConditionCheck", {})
        .get("Key", {})
        .get(keys.SK, {})
        .get("S", "")
        .startswith(keys.MIGRATION_FENCE_PREFIX)
        for action in body.get("TransactItems", [])
    )


def _batch_puts(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        request.get("PutRequest", {}).get("Item", {})
        for requests in body.get("RequestItems", {}).values()
        for request in requests
    ]


def is_bulk_copy(body: dict[str, Any]) -> bool:
    """Whether a BatchWriteItem body is one of the migration's copies: it puts rows into a
    workspace partition (store/migration/bulk.py; the app's own v2 writes are single puts
    and transactions)."""
    puts = _batch_puts(body)
    return bool(puts) and all(
        item.get(keys.PK, {}).get("S", "").startswith(keys.WORKSPACE_PREFIX) for item in puts
    )


def _key(request: dict[str, Any]) -> tuple[str, str]:
    key = request.get("Key") or request.get("Item") or {}
    return key.get(keys.PK, {}).get("S", ""), key.get(keys.SK, {}).get("S", "")


def is_heartbeat(body: dict[str, Any]) -> bool:
    """An UpdateItem on the claim that moves its heartbeat (store/migration/lease.py
    ``publish``); releases, retries and failures on the claim do not set ``heartbeatAt``."""
    return _key(body) == (keys.MIGRATION_PK, keys.MIGRATION_CLAIM_SK) and "heartbeatAt" in str(
        body.get("UpdateExpression", "")
    )


def is_first_claim(body: dict[str, Any]) -> bool:
    """The transaction that creates the claim row (store/migration/claim.py ``_claim_first``):
    a Put of MIGRATION/CLAIM on condition that it does not exist yet, with the fences."""
    return any(
        _key(action["Put"]) == (keys.MIGRATION_PK, keys.MIGRATION_CLAIM_SK)
        for action in body.get("TransactItems", [])
        if "Put" in action
    )


def is_flag_write(body: dict[str, Any]) -> bool:
    """The transaction that writes the flag (store/migration/flag.py ``write_flag``)."""
    return any(
        _key(action["Put"]) == (keys.MIGRATION_PK, keys.MIGRATION_FLAG_SK)
        for action in body.get("TransactItems", [])
        if "Put" in action
    )


COPIES = Target("BatchWriteItem", "migration copies", is_bulk_copy)
# The copy's fenced transactions: only the records of kept-back rows, and team rows that do
# not fit beside the flag.
FENCED_COPIES = Target("TransactWriteItems", "fenced copies", is_fenced_copy)
HEARTBEATS = Target("UpdateItem", "claim heartbeats", is_heartbeat)
FIRST_CLAIM = Target("TransactWriteItems", "first claim", is_first_claim)
FLAG_WRITES = Target("TransactWriteItems", "flag writes", is_flag_write)


def copied_keys(body: dict[str, Any]) -> list[tuple[str, str]]:
    """The (PK, SK) of every row a copy (a BatchWriteItem or a transaction) puts."""
    puts = _batch_puts(body)
    if puts:
        return [(item[keys.PK]["S"], item[keys.SK]["S"]) for item in puts]
    return [
        (action["Put"]["Item"][keys.PK]["S"], action["Put"]["Item"][keys.SK]["S"])
        for action in body.get("TransactItems", [])
        if "Put" in action
    ]
