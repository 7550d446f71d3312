"""An inviter who accepts their own invite (found by the invariant state machine): the
transaction named their member row twice, and DynamoDB refused the whole request."""

from __future__ import annotations

import pytest

from store import invites
from store import workspaces as ws
from store.db import Database

OWNER = ("owner-id", "owner@example.com")


def test_accepting_ones_own_invite_is_already_member_not_a_refused_request(database: Database):
    workspace = ws.create_workspace(database, "Acme", *OWNER)
    _, token, _ = invites.create_invite(
        database,
        workspace.workspace_id,
        email=OWNER[1],
        role="member",
        invited_by=OWNER[0],
        lifetime_seconds=3600,
    )
    with pytest.raises(invites.AlreadyMember):
        invites.accept(database, token, user_id=OWNER[0], email=OWNER[1])
    assert ws.get_member(database, workspace.workspace_id, OWNER[0]).role == "owner"
