"""Fixtures for workspace tests: people with their own browsers, and a workspace where an
owner, an admin and a member each have a signed-in browser."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from store import keys
from store import workspaces as store_workspaces
from store.db import Database, n, now_iso, s
from tests.support.auth import Person, register

PersonFactory = Callable[..., Person]


@pytest.fixture
def person(app: Any) -> PersonFactory:
    """Register someone in their own browser; they stay signed in."""

    def make(email: str, name: str | None = None) -> Person:
        return register(app, email, name or email.split("@")[0].title())

    return make


def add_member(database: Database, workspace_id: str, who: Person, role: str) -> None:
    """Put a membership straight into the table (as an accepted invite or v1 copy would)."""
    workspace = database.get(keys.workspace(workspace_id), consistent=True)
    assert workspace is not None
    row = store_workspaces.member_row(
        workspace_id,
        who.user_id,
        role=role,
        email=who.email,
        workspace_name=workspace["name"]["S"],
        joined_at=now_iso(),
    )
    database.client.put_item(TableName=database.table, Item=row)
    if role == "owner":
        database.client.update_item(
            TableName=database.table,
            Key=keys.workspace(workspace_id),
            UpdateExpression="ADD ownerCount :one",
            ExpressionAttributeValues={":one": n(1)},
        )


def create_workspace(who: Person, name: str = "Acme") -> str:
    """Create a workspace through the page, as its owner would; returns its id."""
    response = who.web.post("/workspaces", {"name": name}, form_page="/workspaces")
    assert response.status_code == 303, who.web.text(response)
    match = re.search(r"/w/([^/]+)/items", response.headers["Location"])
    assert match
    return match.group(1)


def add_item(database: Database, workspace_id: str, item_id: str, **attributes: Any) -> None:
    row = {
        **keys.item(workspace_id, item_id),
        "title": s(f"Item {item_id}"),
        "status": s("open"),
        "createdAt": s(now_iso()),
        "updatedAt": s(now_iso()),
        "createdBy": s("someone"),
        **attributes,
    }
    database.client.put_item(TableName=database.table, Item=row)


@dataclass
class Team:
    workspace_id: str
    owner: Person
    admin: Person
    member: Person
    stranger: Person

    def by_role(self, role: str) -> Person:
        return {"owner": self.owner, "admin": self.admin, "member": self.member}.get(
            role, self.stranger
        )


@pytest.fixture
def team(person: PersonFactory, database: Database) -> Team:
    owner = person("olivia@example.com", "Olivia Owner")
    admin = person("adam@example.com", "Adam Admin")
    member = person("mia@example.com", "Mia Member")
    stranger = person("sam@example.com", "Sam Stranger")
    workspace_id = create_workspace(owner, "Acme")
    add_member(database, workspace_id, admin, "admin")
    add_member(database, workspace_id, member, "member")
    return Team(workspace_id, owner, admin, member, stranger)
