"""What most tests share: a small browser over Flask's test client (it reads forms' CSRF
fields like a person's browser would, so tests run with CSRF protection switched on), table
snapshots and look-ups, v1 data, and waiting on a condition."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from html import unescape
from typing import Any

from werkzeug.security import generate_password_hash
from werkzeug.test import TestResponse

from store import keys
from store.db import Database
from store.migration import legacy


def is_moto(client: Any) -> bool:
    """moto answers in-process for AWS's own endpoint; DynamoDB Local has a loopback URL."""
    return "amazonaws.com" in client.meta.endpoint_url


CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]*)"')
PASSWORD = "a long enough test password"
# PASSWORD hashed the way v1 hashed, with few iterations: cheap to make, still checkable.
V1_PASSWORD_HASH = generate_password_hash(PASSWORD, "pbkdf2:sha256:1000")


class WebClient:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.last_page = ""

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        response = self.client.get(path, **kwargs)
        if response.mimetype == "text/html":
            self.last_page = response.get_data(as_text=True)
        return response

    def csrf_from(self, path: str) -> str:
        self.get(path)
        return self.csrf()

    def csrf(self) -> str:
        match = CSRF_FIELD.search(self.last_page)
        assert match, "the page has no form with a CSRF field"
        return unescape(match.group(1))

    def post(
        self,
        path: str,
        data: dict[str, Any] | None = None,
        *,
        form_page: str | None = None,
        csrf: str | None = None,
        **kwargs: Any,
    ) -> TestResponse:
        """POST like a browser submitting the form found on ``form_page`` (default: ``path``)."""
        payload = dict(data or {})
        if csrf is None:
            csrf = self.csrf_from(form_page or path)
        if csrf is not False:
            payload["csrf_token"] = csrf
        response = self.client.post(path, data=payload, **kwargs)
        if response.mimetype == "text/html":
            self.last_page = response.get_data(as_text=True)
        return response

    def register(
        self, email: str, name: str = "Test Person", password: str = PASSWORD, **kwargs: Any
    ) -> TestResponse:
        return self.post(
            "/register", {"email": email, "name": name, "password": password}, **kwargs
        )

    def login(self, email: str, password: str = PASSWORD, **kwargs: Any) -> TestResponse:
        return self.post("/login", {"email": email, "password": password}, **kwargs)

    def logout(self) -> TestResponse:
        return self.post("/logout", form_page="/")

    def cookie(self, name: str) -> str | None:
        found = self.client.get_cookie(name)
        return found.value if found else None

    def text(self, response: TestResponse) -> str:
        return response.get_data(as_text=True)


def scan_all(db: Database) -> list[dict[str, Any]]:
    """Every row of the table, strongly consistent, in key order: a snapshot to compare."""
    rows: list[dict[str, Any]] = []
    params: dict[str, Any] = {"TableName": db.table, "ConsistentRead": True}
    while True:
        page = db.client.scan(**params)
        rows.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            break
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return sorted(rows, key=lambda row: (row["PK"]["S"], row["SK"]["S"]))


def rows_but_migration(db: Database) -> list[dict[str, Any]]:
    """The table without the migration's rows: on a fresh table the first signed-in page
    writes the flag from a background thread, whenever it gets to it."""
    return [row for row in scan_all(db) if row["PK"]["S"] != keys.MIGRATION_PK]


def rows_with(db: Database, pk_prefix: str, sk_prefix: str = "") -> list[dict[str, Any]]:
    """The rows whose PK and SK start with these prefixes, in key order."""
    return [
        row
        for row in scan_all(db)
        if row["PK"]["S"].startswith(pk_prefix) and row["SK"]["S"].startswith(sk_prefix)
    ]


def user_id_of(db: Database, email: str) -> str:
    """The user id the e-mail pointer row names (the address as stored: lower case)."""
    row = db.get(keys.email(email), consistent=True)
    assert row, f"no account for {email}"
    return row["userId"]["S"]


@contextlib.contextmanager
def hooked(client: Any, event: str, handler: Callable[..., Any]) -> Iterator[None]:
    """Register a botocore event handler on ``client`` for the duration of the block."""
    client.meta.events.register(event, handler)
    try:
        yield
    finally:
        client.meta.events.unregister(event, handler)


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, step: float = 0.05) -> Any:
    """Call ``predicate`` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")


def seed_v1(
    db: Database, *, items: int, settings: int = 5, members: int = 4, seed: int = 7
) -> list[legacy.SeededAccount]:
    """Write a v1 data set; its accounts sign in with PASSWORD."""
    rows, accounts = legacy.build_dataset(items, settings, members, V1_PASSWORD_HASH, seed=seed)
    legacy.write_rows(db, rows)
    return accounts


def create_v1_table(client: Any, name: str, **billing: Any) -> None:
    """A table as v1 made it: PK/SK only, no index, no TTL (on demand unless told)."""
    client.create_table(
        TableName=name,
        AttributeDefinitions=[
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ],
        **(billing or {"BillingMode": "PAY_PER_REQUEST"}),
    )
