"""The session's DynamoDB Local, replaced when its stream records would slow every write.

DynamoDB Local keeps every stream record of its lifetime in one SQLite table (records of
deleted tables too, for 24 hours), keyed by a sequence number shared by all streams. On each
write to a table with a stream it looks up the first record of that table's shard with
``SELECT MIN(SequenceNumber) ... WHERE ShardID = ?``, which has no index on the shard, so the
write scans every record written before the shard began. Measured here (one process, a
table created after 10,000 records of another table): 15 ms a write instead of 2 ms; after a
suite's worth of migrations (~100,000 records) a write costs over 100 ms and the server half
of the suite took half an hour. Real DynamoDB has no such cost.

So the suite measures what the next test would pay: before a test that uses the server, it
writes one item to a small probe table with a stream and reads that record's sequence number,
which counts every stream record so far. The next test is taken to write about as many records
as the last one did; when those writes would scan longer than a restart takes, it starts a
fresh in-memory server (about 3 s) for this test and those after it. Nothing carries over:
every test makes its own table.
"""

from __future__ import annotations

import uuid
from typing import Any

from devtools import embedded_db
from store.db import build_client
from tests.support.helpers import create_v1_table

# What one write to a new table pays per record written before it (see above), and what a
# restart costs; both measured on a quiet 2-core machine.
SCAN_SECONDS_PER_RECORD = 1.3e-6
RESTART_SECONDS = 3.0
PROBE_TABLE = "stream-backlog-probe"
# The JIT's first tier only and one GC thread: a server that lives for a few tests starts on
# about 4.7 s of CPU instead of 7-9 s (start plus 600 calls, measured), the same wall time.
FAST_START = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")


class ReplaceableDynamoDBLocal:
    """One DynamoDB Local at a time; ``endpoint()`` replaces it when its backlog would cost
    the next test more than a restart."""

    def __init__(self, restart_seconds: float = RESTART_SECONDS) -> None:
        self.restart_seconds = restart_seconds
        self.restarts = 0
        self._server: embedded_db.EmbeddedDB | None = None
        self._client: Any = None
        self._streams: Any = None
        self._probe_arn = ""
        self._last_probe = ""
        self._records_at_last_check = 0

    def endpoint(self) -> str:
        if self._server is not None and self._next_test_would_scan_longer_than_a_restart():
            self.stop()
            self.restarts += 1
        if self._server is None:
            self._start()
        assert self._server is not None
        return self._server.endpoint

    def _next_test_would_scan_longer_than_a_restart(self) -> bool:
        records = self.stream_records()
        written = records - self._records_at_last_check
        self._records_at_last_check = records
        return records * written * SCAN_SECONDS_PER_RECORD > self.restart_seconds

    def stream_records(self) -> int:
        """Stream records written since this server started (the probe's own included)."""
        return self._probe("AFTER_SEQUENCE_NUMBER", SequenceNumber=self._last_probe)

    def _probe(self, position: str, **where: str) -> int:
        """Write a probe item; the sequence number of its stream record (read from position)."""
        iterator = self._streams.get_shard_iterator(
            StreamArn=self._probe_arn,
            ShardId=self._probe_shard(),
            ShardIteratorType=position,
            **where,
        )["ShardIterator"]
        self._client.put_item(
            TableName=PROBE_TABLE, Item={"PK": {"S": "probe"}, "SK": {"S": uuid.uuid4().hex}}
        )
        records = self._streams.get_records(ShardIterator=iterator)["Records"]
        if not records:  # DynamoDB Local rolled the probe's shard over: start afresh
            return 10**9
        self._last_probe = str(records[-1]["dynamodb"]["SequenceNumber"])
        return int(self._last_probe)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def _start(self) -> None:
        server = embedded_db.start_dynamodb_local(None, java_options=FAST_START)
        self._client = build_client(
            endpoint=server.endpoint, region="us-east-1", local_credentials=True
        )
        self._streams = build_client(
            endpoint=server.endpoint,
            region="us-east-1",
            local_credentials=True,
            service="dynamodbstreams",
        )
        # A bare PK/SK table (as v1 made them) with the smallest stream.
        create_v1_table(
            self._client,
            PROBE_TABLE,
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"},
        )
        description = self._client.describe_table(TableName=PROBE_TABLE)["Table"]
        self._probe_arn = description["LatestStreamArn"]
        self._records_at_last_check = self._probe("TRIM_HORIZON")
        self._server = server

    def _probe_shard(self) -> str:
        shards = self._streams.describe_stream(StreamArn=self._probe_arn)["StreamDescription"][
            "Shards"
        ]
        open_shards = [s for s in shards if "EndingSequenceNumber" not in s["SequenceNumberRange"]]
        return str((open_shards or shards)[-1]["ShardId"])
