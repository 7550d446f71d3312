"""The suite's DynamoDB Local is replaced once its stream records would slow the next test
more than a restart costs (tests/support/local_dynamodb.py)."""

from __future__ import annotations

import pytest

from store import schema
from store.db import build_client
from tests.support.local_dynamodb import SCAN_SECONDS_PER_RECORD, ReplaceableDynamoDBLocal

pytestmark = pytest.mark.local_only("starts DynamoDB Local")


def test_the_server_is_replaced_once_its_stream_records_cost_more_than_a_restart() -> None:
    # A "restart" worth the scans of 100 records each over a backlog of 100.
    server = ReplaceableDynamoDBLocal(restart_seconds=100 * 100 * SCAN_SECONDS_PER_RECORD)
    try:
        first = server.endpoint()
        client = build_client(endpoint=first, region="us-east-1", local_credentials=True)
        schema.ensure_table(client, "with-stream", poll=0.05)
        client.update_table(
            TableName="with-stream",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )

        def write(count: int) -> None:
            for _ in range(count):
                n = server.stream_records()  # one probe record each, counted too
                client.put_item(
                    TableName="with-stream", Item={"PK": {"S": f"P{n}"}, "SK": {"S": "X"}}
                )

        before = server.stream_records()
        write(20)
        # 20 writes and 21 probes: the count follows every stream's records.
        assert server.stream_records() == before + 41
        # About 45 records, 45 of them since the last check: cheaper than a restart.
        assert server.endpoint() == first and server.restarts == 0

        write(40)
        # About 130 records, 85 since the last check: 130 x 85 > 100 x 100.
        second = server.endpoint()
        assert server.restarts == 1 and second != first
        fresh = build_client(endpoint=second, region="us-east-1", local_credentials=True)
        assert "with-stream" not in fresh.list_tables()["TableNames"]
        assert server.stream_records() < 5
    finally:
        server.stop()
