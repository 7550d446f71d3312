"""moto's TransactWriteItems, with a rollback that copies the rows it names, not the tables.

moto 5.2 deep-copies every table a transaction names, once per action, so that a cancelled
transaction can put the tables back (``DynamoDBBackend.transact_write_items``). Each call
then costs time in proportion to everything in the table: in the suite's migration and
invite tests that was most of the moto run (one test spent 37 of its 55 s copying tables).

This keeps moto's all-or-nothing outcome: before the call it saves a copy of each row the
transaction names (or that it was absent) and the length of the table's stream; when moto
rolls back, it puts those rows and the stream back instead. moto's own copy is skipped for
tables only, while the call runs. Rows a transaction does not name are never written by it,
so they need no copy. ``tests/store/test_transactions_all_or_nothing.py`` checks a
cancelled transaction leaves the table as it was.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

import moto.dynamodb.models as models
from moto.dynamodb.exceptions import (
    MockValidationException,
    MultipleTransactionsException,
    TransactionCanceledException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table

_ROLLED_BACK = (
    TransactionCanceledException,
    MultipleTransactionsException,
    MockValidationException,
)
_skipping = threading.local()
_installed = False


class _TablesNotCopied:
    """Stands in for the ``copy`` module inside moto's dynamodb models while a transaction
    runs on this thread: a Table comes back as itself; anything else is copied as before."""

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        if getattr(_skipping, "active", False) and isinstance(value, Table):
            return value
        return copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


def _row_key(table: Table, action: dict[str, Any]) -> tuple[Any, Any] | None:
    try:
        key = action["Item"] if "Item" in action else action["Key"]
        hash_value = DynamoType(key[table.hash_key_attr])
        range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
    except (KeyError, TypeError):
        return None  # moto refuses the action before it writes anything
    return hash_value, range_value


def _save(
    backend: DynamoDBBackend, items: list[dict[str, Any]]
) -> tuple[list[tuple[Table, tuple[Any, Any], Any]], dict[str, int]]:
    """A copy of each row the transaction names (None where absent), and the length of each
    named table's stream."""
    rows: list[tuple[Table, tuple[Any, Any], Any]] = []
    streams: dict[str, int] = {}
    for entry in items:
        _, action = next(iter(entry.items()))
        table = backend.tables.get(action.get("TableName", ""))
        key = _row_key(table, action) if table is not None else None
        if table is None or key is None:
            continue
        row = table.get_item(*key) if table.range_key_attr else table.get_item(key[0])
        rows.append((table, key, copy.deepcopy(row)))
        if table.stream_shard is not None:
            streams.setdefault(table.name, len(table.stream_shard.items))
    return rows, streams


def _restore(
    backend: DynamoDBBackend,
    rows: list[tuple[Table, tuple[Any, Any], Any]],
    streams: dict[str, int],
) -> None:
    for table, (hash_value, range_value), row in reversed(rows):
        if table.range_key_attr:
            partition = table.items[hash_value]
            if row is None:
                partition.pop(range_value, None)
                if not partition:
                    table.items.pop(hash_value, None)
            else:
                partition[range_value] = row
        elif row is None:
            table.items.pop(hash_value, None)
        else:
            table.items[hash_value] = row
    for name, length in streams.items():
        shard = backend.tables[name].stream_shard
        if shard is not None:
            del shard.items[length:]


def install() -> None:
    """Patch moto once for this process (the moto backend of the suite only)."""
    global _installed
    if _installed:
        return
    _installed = True
    original = DynamoDBBackend.transact_write_items
    assert models.copy is copy, "moto's models no longer import copy: re-check"
    models.copy = _TablesNotCopied()  # type: ignore[assignment]

    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        saved = _save(self, transact_items) if len(transact_items) <= 100 else None
        _skipping.active = True
        try:
            original(self, transact_items)
        except _ROLLED_BACK:
            if saved is not None:
                _restore(self, *saved)
            raise
        finally:
            _skipping.active = False

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
