"""Reading late v1 writes from the table's stream, and where the reading stands.

``db init`` turns the stream on before the first copy can start, so every v1 write after the
copy began is in it for 24 hours. The reader walks the stream's shards, parents before
children (DescribeStream -> GetShardIterator -> GetRecords), hands the v1 keys it finds to
``sync.apply_changes`` and then records, per shard, the last sequence number applied
(``MIGRATION`` / ``SHARD#<id>``): the next reader, in this process or another, resumes after
it. Records from before the copy began (less a margin: DynamoDB Local rounds record times
down to the minute) are skipped, since the copy read v1 after them.

Where the stream cannot show everything since the copy began, the reader says so
(``NeedFullComparison``) and the caller compares every row instead: no stream, a stream
created after the copy began, records trimmed (24 h) before they were read, a checkpoint
older than the stream. After a full comparison ``mark_covered`` records that everything up to
its start is applied.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from store import keys
from store.db import Database, RawItem, error_code, iso, parse_iso, query_prefix, s, text

from .conflicts import DELETE, EDIT, INSERT
from .sync import Change, Tally, Target, apply_changes, change_for

log = logging.getLogger(__name__)

MARGIN = timedelta(minutes=2)
# DynamoDB keeps stream records for 24 h; a copy older than this cannot be caught up from it.
RETENTION = timedelta(hours=23)
ACTIONS = {"INSERT": INSERT, "MODIFY": EDIT, "REMOVE": DELETE}
RECORDS_PER_CALL = 1000
SKIPPED_BEFORE_CHECKPOINT = 500
# A sequence number as text that sorts like the number (they are up to 40 digits).
SEQUENCE_WIDTH = 64


class NeedFullComparison(Exception):
    """The stream cannot show every v1 write since the copy began; the reason is in words."""


@dataclass
class Reader:
    """One process's position in the stream between polls: the next iterator per shard
    (saves a GetShardIterator per poll) and the stream's ARN (read again now and then)."""

    iterators: dict[str, str] = field(default_factory=dict)
    arn: str | None = None
    arn_read_at: float = float("-inf")
    shards: list[dict[str, Any]] = field(default_factory=list)
    # What the stream's rows said (covered since, checkpoints), as of ``shards_read_at``: a
    # stale value only makes a reader apply some records again, which changes nothing.
    covered: datetime | None = None
    done: set[str] = field(default_factory=set)
    sequences: dict[str, str] = field(default_factory=dict)
    shards_read_at: float = float("-inf")
    # DescribeTable / DescribeStream at most this often per process while polling.
    describe_every: float = 30.0


@dataclass
class Pass:
    """What one pass over the stream did; ``caught_up`` when every shard was read to its end."""

    tally: Tally = field(default_factory=Tally)
    records: int = 0
    # Records that were v1 writes since the copy began (the rest are v2's own writes).
    changes: int = 0
    caught_up: bool = True


def stream_arn(db: Database) -> str | None:
    """The table's current stream, or None when it has none (or the server has no streams)."""
    table = db.client.describe_table(TableName=db.table)["Table"]
    if not table.get("StreamSpecification", {}).get("StreamEnabled"):
        return None
    arn: str | None = table.get("LatestStreamArn")
    return arn


def changes_reach_v2_later(db: Database, copy_started: str) -> bool:
    """Whether every v1 write since ``copy_started`` is in the table's stream (it existed
    before the copy began), so the late-write sync applies them after the flag: a copy that
    finds v1 changed under it (a v1 server still writing) need not start over."""
    arn = stream_arn(db)
    if arn is None:
        return False
    description = db.streams.describe_stream(StreamArn=arn, Limit=1)["StreamDescription"]
    created = description.get("CreationRequestDateTime")
    return created is not None and created - MARGIN <= parse_iso(copy_started)


def mark_covered(db: Database, arn: str | None, since: str) -> None:
    """Everything v1 wrote before ``since`` is applied (a full comparison began then): the
    stream is followed from there on, from each shard's start (records before ``since`` are
    skipped), so the old checkpoints go."""
    for old in _checkpoint_rows(db):
        db.client.delete_item(
            TableName=db.table, Key={keys.PK: old[keys.PK], keys.SK: old[keys.SK]}
        )
    row: RawItem = {**keys.migration_sync(), "coveredSince": s(since)}
    if arn:
        row["streamArn"] = s(arn)
    db.client.put_item(TableName=db.table, Item=row)


def read_pass(
    db: Database, target: Target, reader: Reader, *, max_records: int, deadline: float
) -> Pass:
    """Apply what the stream holds beyond the checkpoints, up to ``max_records`` records or
    the ``deadline`` (monotonic); raises NeedFullComparison when it cannot."""
    now = time.monotonic()
    if reader.arn is None or now - reader.arn_read_at > reader.describe_every:
        reader.arn, reader.arn_read_at = stream_arn(db), now
    arn = reader.arn
    if arn is None:
        raise NeedFullComparison("the table has no stream")
    if reader.covered is None or now - reader.shards_read_at > reader.describe_every:
        reader.covered, _ = _covered_since(db, target, arn)
        reader.shards = _shards(db, arn)
        reader.done, reader.sequences = _checkpoints(db, arn)
        reader.shards_read_at = now
    covered, done, sequences = reader.covered, reader.done, reader.sequences
    result = Pass()
    listed = {shard["ShardId"] for shard in reader.shards}
    # Records trimmed (24 h) unread matter only if they may be newer than what is covered.
    trimmed_matters = datetime.now(UTC) - covered > RETENTION
    for shard in _parents_first(reader.shards):
        shard_id, parent = shard["ShardId"], shard.get("ParentShardId")
        if shard_id in done:
            continue
        lost_parent = parent and parent not in done and parent not in listed
        if lost_parent and shard_id not in sequences and trimmed_matters:
            raise NeedFullComparison("stream records were trimmed before they were read")
        if parent in listed and parent not in done:
            result.caught_up = False
            continue  # the parent's records first; the next pass comes back here
        budget = max_records - result.records
        if budget <= 0 or time.monotonic() > deadline:
            result.caught_up = False
            break
        _read_shard(
            db, target, reader, arn, shard_id, sequences.get(shard_id), covered, budget, result
        )
    return result


def _covered_since(db: Database, target: Target, arn: str) -> tuple[datetime, bool]:
    """Since when the stream must be read, and whether following it starts with this pass."""
    state = db.get(keys.migration_sync(), consistent=True)
    if state is not None and text(state, "streamArn") == arn:
        return parse_iso(text(state, "coveredSince")), False
    copy_started = parse_iso(target.copy_started)
    description = db.streams.describe_stream(StreamArn=arn, Limit=1)["StreamDescription"]
    created = description.get("CreationRequestDateTime")
    if state is not None:
        raise NeedFullComparison("the table's stream changed since it was last read")
    if created is not None and created - MARGIN > copy_started:
        raise NeedFullComparison("the table's stream began after the copy did")
    if datetime.now(UTC) - copy_started > RETENTION:
        raise NeedFullComparison("the copy began more than a day ago; the stream keeps 24 h")
    mark_covered(db, arn, target.copy_started)
    return copy_started, True


def _shards(db: Database, arn: str) -> list[dict[str, Any]]:
    shards: list[dict[str, Any]] = []
    params: dict[str, Any] = {"StreamArn": arn}
    while True:
        description = db.streams.describe_stream(**params)["StreamDescription"]
        shards.extend(description.get("Shards", []))
        last = description.get("LastEvaluatedShardId")
        if not last:
            return shards
        params["ExclusiveStartShardId"] = last


def _checkpoint_rows(db: Database) -> list[RawItem]:
    return query_prefix(db, keys.MIGRATION_PK, keys.MIGRATION_SHARD_PREFIX)


def _checkpoints(db: Database, arn: str) -> tuple[set[str], dict[str, str]]:
    """The shards read to their end, and per shard read so far the last sequence applied
    ("" when none yet): this stream's checkpoints."""
    done: set[str] = set()
    sequences: dict[str, str] = {}
    for row in _checkpoint_rows(db):
        if text(row, "streamArn") != arn:
            continue
        shard_id = keys.suffix(row[keys.SK]["S"], keys.MIGRATION_SHARD_PREFIX)
        if row.get("done", {}).get("BOOL"):
            done.add(shard_id)
        sequences[shard_id] = text(row, "sequence")
    return done, sequences


def _parents_first(shards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_id = {shard["ShardId"]: shard for shard in shards}

    def depth(shard: dict[str, Any]) -> int:
        steps, parent = 0, shard.get("ParentShardId")
        while parent in by_id and steps < len(by_id):
            steps, parent = steps + 1, by_id[parent].get("ParentShardId")
        return steps

    return sorted(shards, key=depth)


def _iterator(db: Database, reader: Reader, arn: str, shard_id: str, sequence: str | None) -> str:
    cached = reader.iterators.pop(shard_id, None)
    if cached:
        return cached
    params: dict[str, Any] = {"StreamArn": arn, "ShardId": shard_id}
    if sequence:
        params.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=sequence)
    else:
        params["ShardIteratorType"] = "TRIM_HORIZON"
    iterator: str = db.streams.get_shard_iterator(**params)["ShardIterator"]
    return iterator


def _read_shard(
    db: Database,
    target: Target,
    reader: Reader,
    arn: str,
    shard_id: str,
    sequence: str | None,
    covered: datetime,
    budget: int,
    result: Pass,
) -> None:
    """Read one shard until it is empty for now, closed, or the budget is spent."""
    iterator: str | None = _iterator(db, reader, arn, shard_id, sequence or None)
    first_visit, moved = sequence is None, False
    read = skipped = 0
    while iterator and read < budget:
        try:
            page = db.streams.get_records(ShardIterator=iterator, Limit=RECORDS_PER_CALL)
        except ClientError as exc:
            code = error_code(exc)
            if code == "TrimmedDataAccessException":
                raise NeedFullComparison(
                    "stream records were trimmed before they were read"
                ) from exc
            if code != "ExpiredIteratorException":
                raise
            # An iterator lives 15 minutes: a new one from the checkpoint.
            iterator = _iterator(db, reader, arn, shard_id, sequence or None)
            continue
        records = page.get("Records", [])
        iterator = page.get("NextShardIterator")
        read += len(records)
        result.records += len(records)
        if records:
            changes = [c for r in records if (c := _change(r, covered))]
            tally = apply_changes(db, target, changes)
            result.tally.add(tally)
            result.changes += len(changes)
            if tally.left:
                result.caught_up = False
                return  # not checkpointed: the next pass reads these again
            sequence = records[-1]["dynamodb"]["SequenceNumber"]
            # A checkpoint is itself a write the stream shows: written only when worth it,
            # or a poller would read its own last checkpoint and write another, forever.
            skipped += len(records) - len(changes)
            moved = moved or bool(changes) or skipped >= SKIPPED_BEFORE_CHECKPOINT
        if not records or iterator is None:
            break
    if read >= budget:
        result.caught_up = False
    if iterator:
        reader.iterators[shard_id] = iterator
    if moved or first_visit or iterator is None:
        _checkpoint(db, arn, shard_id, sequence or None, closed=iterator is None)
        reader.sequences[shard_id] = sequence or ""
        if iterator is None:
            reader.done.add(shard_id)


def _change(record: dict[str, Any], covered: datetime) -> Change | None:
    data = record.get("dynamodb", {})
    at = data.get("ApproximateCreationDateTime")
    if isinstance(at, datetime) and at.astimezone(UTC) < covered - MARGIN:
        return None  # before the copy began: the copy read it
    key = data.get("Keys", {})
    pk, sk = key.get(keys.PK, {}).get("S"), key.get(keys.SK, {}).get("S")
    if pk is None or sk is None:
        return None
    when = iso(at) if isinstance(at, datetime) else None
    return change_for(pk, sk, ACTIONS.get(record.get("eventName", ""), EDIT), when)


def _checkpoint(
    db: Database, arn: str, shard_id: str, sequence: str | None, *, closed: bool
) -> None:
    """Move the shard's checkpoint forward (never back: two readers may race)."""
    values: dict[str, Any] = {":arn": s(arn), ":done": {"BOOL": closed}}
    names = {"#done": "done"}
    sets = ["streamArn = :arn", "#done = :done"]
    condition = None
    if sequence is not None:
        sets += ["#seq = :seq", "seqSort = :sort"]
        values[":seq"], values[":sort"] = s(sequence), s(sequence.zfill(SEQUENCE_WIDTH))
        condition = "attribute_not_exists(seqSort) OR seqSort <= :sort OR streamArn <> :arn"
    params: dict[str, Any] = {
        "TableName": db.table,
        "Key": keys.migration_shard(shard_id),
        "UpdateExpression": "SET " + ", ".join(sets),
        "ExpressionAttributeValues": values,
        "ExpressionAttributeNames": names,
    }
    if sequence is not None:
        names["#seq"] = "sequence"
        params["ConditionExpression"] = condition
    try:
        db.client.update_item(**params)
    except ClientError as exc:
        if error_code(exc) != "ConditionalCheckFailedException":
            raise
        log.debug("shard %s: another reader is further along", shard_id)
