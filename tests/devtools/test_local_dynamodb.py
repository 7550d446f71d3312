"""The suite's DynamoDB Local is replaced once its stream records would slow new tables."""

from __future__ import annotations

import pytest

from store import schema
from store.db import build_client
from tests.support.local_dynamodb import ReplaceableDynamoDBLocal

pytestmark = pytest.mark.local_only("starts DynamoDB Local")


def test_the_server_is_replaced_once_stream_records_pass_the_limit() -> None:
    server = ReplaceableDynamoDBLocal(restart_after=60)
    try:
        first = server.endpoint()
        client = build_client(endpoint=first, region="us-east-1", local_credentials=True)
        schema.ensure_table(client, "with-stream", poll=0.05)
        client.update_table(
            TableName="with-stream",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        before = server.stream_records()
        for n in range(40):
            client.put_item(TableName="with-stream", Item={"PK": {"S": f"P{n}"}, "SK": {"S": "X"}})
        # 40 writes and the probe's own: the count follows every stream's records.
        assert server.stream_records() == before + 41
        assert server.endpoint() == first and server.restarts == 0

        for n in range(40, 60):
            client.put_item(TableName="with-stream", Item={"PK": {"S": f"P{n}"}, "SK": {"S": "X"}})
        second = server.endpoint()
        assert server.restarts == 1 and second != first
        fresh = build_client(endpoint=second, region="us-east-1", local_credentials=True)
        assert "with-stream" not in fresh.list_tables()["TableNames"]
        assert server.stream_records() < 5
    finally:
        server.stop()
