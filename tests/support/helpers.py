"""A small browser over Flask's test client: it reads forms' CSRF fields like a person's
browser would, so tests run with CSRF protection switched on."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

from werkzeug.test import TestResponse

from store.db import Database


def is_moto(client: Any) -> bool:
    """moto answers in-process for AWS's own endpoint; DynamoDB Local has a loopback URL."""
    return "amazonaws.com" in client.meta.endpoint_url


CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]*)"')
PASSWORD = "a long enough test password"


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
