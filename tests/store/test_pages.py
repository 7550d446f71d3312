"""store.pages.load_page: a workspace page's rows, typed and by name, in one BatchGetItem."""

from __future__ import annotations

import time
from typing import Any

import pytest

from store import accounts, pages, workspaces
from tests.support.auth import dynamodb_calls


def _workspace(database: Any) -> workspaces.Workspace:
    return workspaces.create_workspace(database, "Acme", "user-1", "ann@x.com")


def test_a_page_reads_workspace_member_settings_and_extras_in_one_call(database: Any):
    workspace = _workspace(database)
    accounts.remember_workspace(database, "user-1", workspace.workspace_id)

    with dynamodb_calls(database.client) as calls:
        page = pages.load_page(
            database,
            "sid",
            workspace.workspace_id,
            "user-1",
            settings=("timezone",),
            extras={"member": "user-1", "item": "no-such-item", "prefs": "user-1"},
            name="Ann",
        )

    assert [name for name, _ in calls] == ["BatchGetItem"]
    assert page.workspace == workspace
    assert page.member is not None and (page.member.role, page.member.name) == ("owner", "Ann")
    assert page.settings.values["timezone"] == "UTC"
    assert page.extras["member"].user_id == "user-1"
    assert page.extras["item"] is None
    assert page.extras["prefs"] == workspace.workspace_id


def test_a_stranger_gets_no_workspace_or_membership_and_an_unknown_extra_is_refused(
    database: Any,
):
    workspace = _workspace(database)
    page = pages.load_page(database, "sid", workspace.workspace_id, "stranger")
    assert page.workspace is not None and page.member is None
    assert pages.load_page(database, "sid", "nope", "stranger").workspace is None
    with pytest.raises(ValueError):
        pages.load_page(database, "sid", workspace.workspace_id, "u", extras={"rows": "x"})


def test_a_signed_out_session_raises_session_revoked(database: Any):
    workspace = _workspace(database)
    accounts.revoke_session(database, "sid-gone", int(time.time()) + 3600)
    with pytest.raises(accounts.SessionRevoked):
        pages.load_page(database, "sid-gone", workspace.workspace_id, "user-1")
