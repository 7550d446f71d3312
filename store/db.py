"""The DynamoDB handle: one low-level client per process, built by the app factory."""

from __future__ import annotations

import decimal
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

RawItem = dict[str, dict[str, Any]]

# boto3's TypeDeserializer traps decimal.Rounded on numbers DynamoDB accepts (boto3 #2500,
# #4693); a wider context turns every valid DynamoDB number into an exact Decimal.
_NUMBER_CONTEXT = decimal.Context(prec=200, Emax=999, Emin=-999, traps=[decimal.InvalidOperation])


@dataclass
class Database:
    client: Any
    table: str
    # The table's stream reader (``dynamodbstreams``), built on first use from ``client``.
    _streams: Any = field(default=None, repr=False, compare=False)

    @property
    def streams(self) -> Any:
        if self._streams is None:
            self._streams = streams_client_for(self.client)
        return self._streams

    def get(self, key: RawItem, *, consistent: bool = False) -> RawItem | None:
        response = self.client.get_item(TableName=self.table, Key=key, ConsistentRead=consistent)
        item: RawItem | None = response.get("Item")
        return item

    def query_pages(self, **params: Any) -> Iterator[dict[str, Any]]:
        """Every page of a Query, following LastEvaluatedKey until it is absent."""
        params = {"TableName": self.table, **params}
        while True:
            page = self.client.query(**params)
            yield page
            if "LastEvaluatedKey" not in page:
                return
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def has_rows(self, pk: str, *, consistent: bool = False) -> bool:
        """Whether the partition ``pk`` holds any row (one item read at most)."""
        page = self.client.query(
            TableName=self.table,
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": {"S": pk}},
            Limit=1,
            ConsistentRead=consistent,
        )
        return bool(page.get("Items"))

    def query_all(self, **params: Any) -> list[RawItem]:
        return [item for page in self.query_pages(**params) for item in page.get("Items", [])]


def build_client(
    *,
    endpoint: str | None,
    region: str | None,
    max_attempts: int = 3,
    connect_timeout: float = 2.0,
    read_timeout: float = 5.0,
    pool_size: int = 16,
    local_credentials: bool = False,
    service: Literal["dynamodb", "dynamodbstreams"] = "dynamodb",
) -> Any:
    """A DynamoDB client with a retry mode and time budget chosen on purpose.

    botocore's default (legacy) mode makes 10 attempts for DynamoDB, ~25 s under throttling;
    standard mode with a small total keeps a page's worst case to a few seconds.
    ``service="dynamodbstreams"`` builds the stream reader the same way.
    """
    config = Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_pool_connections=pool_size,
    )
    session = boto3.session.Session()
    kwargs: dict[str, Any] = {"region_name": region or "us-east-1", "config": config}
    if endpoint:
        kwargs["endpoint_url"] = endpoint
    if local_credentials or (endpoint and session.get_credentials() is None):
        # DynamoDB Local and moto accept any credentials but botocore refuses to sign without.
        kwargs["aws_access_key_id"] = "local"
        kwargs["aws_secret_access_key"] = "local"  # noqa: S105 - not a secret
    if service == "dynamodbstreams":
        return session.client("dynamodbstreams", **kwargs)
    return session.client("dynamodb", **kwargs)


def streams_client_for(client: Any) -> Any:
    """A ``dynamodbstreams`` client for the server ``client`` talks to, with its settings.

    A DynamoDB-compatible server (DynamoDB Local, moto's server) answers streams on the same
    endpoint; Amazon's has its own (``streams.dynamodb.<region>``), which botocore picks when
    no endpoint is given."""
    endpoint = client.meta.endpoint_url
    if endpoint and endpoint.rstrip("/").endswith(".amazonaws.com"):
        endpoint = None
    config = client.meta.config
    return build_client(
        endpoint=endpoint,
        region=client.meta.region_name,
        max_attempts=(config.retries or {}).get("total_max_attempts", 3),
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        service="dynamodbstreams",
    )


def error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def condition_failed(exc: ClientError) -> bool:
    """Whether a single-item write was refused by its ConditionExpression."""
    return error_code(exc) == "ConditionalCheckFailedException"


def cancellation_reasons(exc: ClientError) -> list[str | None]:
    """Why a transaction was cancelled, one code per action in the order they were sent
    (``"None"`` for an action that was fine); empty for any other error."""
    return [reason.get("Code") for reason in exc.response.get("CancellationReasons", [])]


def new_id() -> str:
    """A fresh id for anything v2 creates (users, workspaces, invites): 128 random bits."""
    return uuid.uuid4().hex


# A row that must not exist yet: every key has a PK, so no PK means no row.
IF_ABSENT = "attribute_not_exists(PK)"


def put_new(db: Database, item: RawItem) -> dict[str, Any]:
    """A TransactWriteItems Put that fails (ConditionalCheckFailed) if the row exists."""
    return {"Put": {"TableName": db.table, "Item": item, "ConditionExpression": IF_ABSENT}}


CONFLICT_RETRIES = 3


def transact(
    db: Database, actions: list[dict[str, Any]], *, attempts: int = CONFLICT_RETRIES
) -> None:
    """TransactWriteItems, sent again while DynamoDB cancels it only for racing another
    transaction on the same items (TransactionConflict); the retry then sees the winner's
    rows, or wins itself. Any other cancellation or error is raised for the caller to read."""
    for attempt in range(attempts):
        try:
            db.client.transact_write_items(TransactItems=actions)
            return
        except ClientError as exc:
            reasons = cancellation_reasons(exc)
            only_raced = "TransactionConflict" in reasons and not (
                set(reasons) - {"TransactionConflict", "None", None}
            )
            if not only_raced or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


def put_if_absent(db: Database, item: RawItem) -> bool:
    """Write ``item`` unless its row exists; False (and nothing written) if it does."""
    try:
        db.client.put_item(TableName=db.table, Item=item, ConditionExpression=IF_ABSENT)
    except ClientError as exc:
        if condition_failed(exc):
            return False
        raise
    return True


def update_if(db: Database, **params: Any) -> bool:
    """UpdateItem with a ConditionExpression: True if it was applied, False if the condition
    refused it (any other error is raised)."""
    try:
        db.client.update_item(TableName=db.table, **params)
    except ClientError as exc:
        if condition_failed(exc):
            return False
        raise
    return True


def query_prefix(db: Database, pk: str, prefix: str, *, consistent: bool = True) -> list[RawItem]:
    """Every row of partition ``pk`` whose SK starts with ``prefix``, all pages."""
    return db.query_all(
        KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
        ExpressionAttributeValues={":pk": {"S": pk}, ":prefix": {"S": prefix}},
        ConsistentRead=consistent,
    )


def s(value: str) -> dict[str, str]:
    return {"S": value}


def n(value: int | float | decimal.Decimal) -> dict[str, str]:
    return {"N": str(value)}


def text(item: Mapping[str, Any] | None, name: str, default: str = "") -> str:
    """A string attribute of a raw item, or the default when absent or of another type."""
    if not item or name not in item:
        return default
    value: str = item[name].get("S", default)
    return value


def number(item: Mapping[str, Any] | None, name: str, default: int = 0) -> int:
    if not item or name not in item or "N" not in item[name]:
        return default
    return int(decimal.Decimal(item[name]["N"]))


def plain(value: Mapping[str, Any]) -> Any:
    """One raw AttributeValue as a Python value, exact for every number DynamoDB can hold."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return inner
    if kind == "N":
        return _NUMBER_CONTEXT.create_decimal(inner)
    if kind == "B":
        return bytes(inner)
    if kind == "BOOL":
        return bool(inner)
    if kind == "NULL":
        return None
    if kind == "SS":
        return set(inner)
    if kind == "NS":
        return {_NUMBER_CONTEXT.create_decimal(x) for x in inner}
    if kind == "BS":
        return {bytes(x) for x in inner}
    if kind == "L":
        return [plain(x) for x in inner]
    if kind == "M":
        return {k: plain(v) for k, v in inner.items()}
    raise ValueError(f"unknown DynamoDB type {kind}")


# Every timestamp the app writes: ISO-8601 UTC with microseconds, so strings sort in time order.
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def now_iso(wall: Callable[[], float] = time.time) -> str:
    return iso(datetime.fromtimestamp(wall(), UTC))


def parse_iso(value: str) -> datetime:
    return datetime.strptime(value, TIMESTAMP_FORMAT).replace(tzinfo=UTC)


def get_db() -> Database:
    """The app's Database, made by ``init_app`` in the factory."""
    from flask import current_app

    database: Database = current_app.extensions["db"]
    return database


def init_app(app: Any, client: Any | None = None) -> Database:
    """Bind a client to the app; tests pass their own (moto or DynamoDB Local)."""
    config = app.config
    if client is None:
        client = build_client(
            endpoint=config["DYNAMODB_ENDPOINT"],
            region=config["AWS_REGION"],
            max_attempts=config["DYNAMODB_MAX_ATTEMPTS"],
            connect_timeout=config["DYNAMODB_CONNECT_TIMEOUT"],
            read_timeout=config["DYNAMODB_READ_TIMEOUT"],
            local_credentials=config.get("DYNAMODB_EMBEDDED", False),
        )
    database = Database(client=client, table=config["DYNAMODB_TABLE"])
    app.extensions["db"] = database
    return database
