"""The settings page (typed, validated, v1 settings kept) and the members page (roles,
removal, leaving, the last owner)."""

from __future__ import annotations

from html import unescape
from typing import Any

import pytest

from store import keys
from store.db import Database, s
from tests.support.helpers import scan_all
from tests.support.workspaces import Team, add_member

VALID = {
    "teamName": "Acme Team",
    "timezone": "Europe/Berlin",
    "defaultStatus": "done",
    "itemsPerPage": "10",
    "notifyOnAssign": "on",
}


def setting(database: Database, ws: str, name: str) -> dict[str, Any] | None:
    return database.get(keys.setting(ws, name), consistent=True)


def post_settings(team: Team, data: dict[str, str]) -> Any:
    path = f"/w/{team.workspace_id}/settings"
    return team.admin.web.post(path, data)


# --- settings --------------------------------------------------------------------------------


def test_settings_are_saved_with_their_types(database, team):
    response = post_settings(team, VALID)
    assert response.status_code == 303
    ws = team.workspace_id
    assert setting(database, ws, "teamName")["value"] == s("Acme Team")
    assert setting(database, ws, "timezone")["value"] == s("Europe/Berlin")
    assert setting(database, ws, "defaultStatus")["value"] == s("done")
    assert setting(database, ws, "itemsPerPage")["value"] == {"N": "10"}
    assert setting(database, ws, "notifyOnAssign")["value"] == {"BOOL": True}
    assert "updatedAt" in setting(database, ws, "teamName")


def test_settings_take_effect_on_the_pages(database, team):
    post_settings(team, VALID)
    ws = team.workspace_id
    new_form = team.member.web.text(team.member.web.get(f"/w/{ws}/items/new"))
    assert '<option value="done" selected>' in new_form
    for i in range(12):
        team.member.web.post(f"/w/{ws}/items/new", {"title": f"T{i}", "status": "open"})
    listing = team.member.web.text(team.member.web.get(f"/w/{ws}/items"))
    assert listing.count('class="item__title"') == 10


def test_untouched_defaults_are_not_written(database, team):
    post_settings(
        team, {"teamName": "", "timezone": "UTC", "defaultStatus": "open", "itemsPerPage": "25"}
    )
    assert [r for r in scan_all(database) if r["SK"]["S"].startswith("SET#")] == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("timezone", "Mars/Olympus_Mons", "Choose a time zone"),
        ("timezone", "../../etc/passwd", "Choose a time zone"),
        ("itemsPerPage", "4", "from 5 to 100"),
        ("itemsPerPage", "101", "from 5 to 100"),
        ("itemsPerPage", "ten", "from 5 to 100"),
        ("defaultStatus", "maybe", "Choose open or done"),
        ("teamName", "x" * 101, "100 characters"),
    ],
)
def test_invalid_settings_are_refused_with_the_typing_kept(database, team, field, value, message):
    before = scan_all(database)
    response = post_settings(team, {**VALID, field: value})
    html = unescape(team.admin.web.text(response))
    assert response.status_code == 400
    assert message in html
    if field != "defaultStatus":  # a select cannot show a choice it does not offer
        assert value[:50] in html
    assert scan_all(database) == before


def test_unknown_v1_settings_are_shown_read_only_and_survive_a_save(database, team):
    ws = team.workspace_id
    legacy = {
        **keys.setting(ws, "custom7"),
        "value": {"M": {"enabled": {"BOOL": True}, "limit": {"N": "12345678901234567890"}}},
        "updatedAt": s("2024-01-01T00:00:00.000000Z"),
    }
    odd = {**keys.setting(ws, "itemsPerPage"), "value": s("twenty"), "updatedAt": s("x")}
    for row in (legacy, odd):
        database.client.put_item(TableName=database.table, Item=row)

    page = unescape(team.admin.web.text(team.admin.web.get(f"/w/{ws}/settings")))
    assert "Other settings" in page and "custom7" in page
    assert "{enabled: yes, limit: 12345678901234567890}" in page
    assert 'name="custom7"' not in page
    assert "Stored as text: twenty" in page and 'name="itemsPerPage"' not in page

    response = post_settings(team, {**VALID, "itemsPerPage": "50"})
    assert response.status_code == 303
    assert setting(database, ws, "custom7") == legacy
    assert setting(database, ws, "itemsPerPage") == odd
    assert setting(database, ws, "teamName")["value"] == s("Acme Team")


def test_a_member_is_refused_the_settings_page(team):
    response = team.member.web.get(f"/w/{team.workspace_id}/settings")
    assert response.status_code == 403
    assert "owners and admins" in team.member.web.text(response)
    nav = team.member.web.text(team.member.web.get(f"/w/{team.workspace_id}/items"))
    assert f"/w/{team.workspace_id}/settings" not in nav


# --- members -----------------------------------------------------------------------------------


def member_role(database: Database, ws: str, user_id: str) -> str | None:
    row = database.get(keys.member(ws, user_id), consistent=True)
    return row["role"]["S"] if row else None


def test_the_members_page_lists_names_and_roles_owners_first(team):
    html = team.member.web.text(team.member.web.get(f"/w/{team.workspace_id}/members"))
    table = html[html.index("<table") :]
    order = [table.index(name) for name in ("Olivia Owner", "Adam Admin", "Mia Member")]
    assert order == sorted(order)
    assert "Sam Stranger" not in html
    # A member sees roles but no controls for others, and no invites.
    assert "/role" not in html and "Pending invites" not in html
    assert f"/members/{team.member.user_id}/remove" in html  # leaving


def test_an_admin_is_not_offered_owner_controls(team):
    html = team.admin.web.text(team.admin.web.get(f"/w/{team.workspace_id}/members"))
    assert f"/members/{team.owner.user_id}/role" not in html
    assert f"/members/{team.owner.user_id}/remove" not in html
    assert '<option value="owner"' not in html
    assert f"/members/{team.member.user_id}/role" in html


def test_an_owner_promotes_a_member_and_the_new_role_counts_at_once(database, team):
    ws = team.workspace_id
    response = team.owner.web.post(
        f"/w/{ws}/members/{team.member.user_id}/role",
        {"role": "admin"},
        form_page=f"/w/{ws}/members",
    )
    assert response.status_code == 303
    assert member_role(database, ws, team.member.user_id) == "admin"
    assert team.member.web.get(f"/w/{ws}/settings").status_code == 200


def test_the_last_owner_can_neither_be_demoted_nor_leave(database, team):
    ws = team.workspace_id
    me = team.owner.user_id
    demote = team.owner.web.post(
        f"/w/{ws}/members/{me}/role", {"role": "member"}, form_page=f"/w/{ws}/members"
    )
    follow = unescape(team.owner.web.text(team.owner.web.get(demote.headers["Location"])))
    assert "is the only owner" in follow
    leave = team.owner.web.post(
        f"/w/{ws}/members/{me}/remove", form_page=f"/w/{ws}/members/{me}/remove"
    )
    follow = unescape(team.owner.web.text(team.owner.web.get(leave.headers["Location"])))
    assert "You are the only owner, so you can't leave" in follow
    assert member_role(database, ws, me) == "owner"


def test_an_owner_hands_over_and_then_leaves(database, team):
    ws = team.workspace_id
    team.owner.web.post(
        f"/w/{ws}/members/{team.admin.user_id}/role",
        {"role": "owner"},
        form_page=f"/w/{ws}/members",
    )
    confirm = team.owner.web.get(f"/w/{ws}/members/{team.owner.user_id}/remove")
    assert "Leave Acme?" in team.owner.web.text(confirm)
    response = team.owner.web.post(
        f"/w/{ws}/members/{team.owner.user_id}/remove",
        form_page=f"/w/{ws}/members/{team.owner.user_id}/remove",
    )
    assert response.status_code == 303 and response.headers["Location"] == "/workspaces"
    assert member_role(database, ws, team.owner.user_id) is None
    assert team.owner.web.get(f"/w/{ws}/items").status_code == 404
    workspace = database.get(keys.workspace(ws), consistent=True)
    assert workspace["ownerCount"] == {"N": "1"}


def test_removing_asks_first_and_the_removed_person_loses_access(database, team):
    ws = team.workspace_id
    path = f"/w/{ws}/members/{team.member.user_id}/remove"
    confirm = team.admin.web.get(path)
    assert confirm.status_code == 200 and "Remove mia@example.com?" in team.admin.web.text(confirm)
    assert member_role(database, ws, team.member.user_id) == "member"

    team.admin.web.post(path, form_page=path)

    assert member_role(database, ws, team.member.user_id) is None
    assert team.member.web.get(f"/w/{ws}/items").status_code == 404


def test_an_unknown_role_is_refused(database, team):
    ws = team.workspace_id
    response = team.owner.web.post(
        f"/w/{ws}/members/{team.member.user_id}/role",
        {"role": "superuser"},
        form_page=f"/w/{ws}/members",
    )
    assert response.status_code == 400
    assert member_role(database, ws, team.member.user_id) == "member"


def test_a_co_owner_may_remove_another_owner(database, team, person):
    ws = team.workspace_id
    second = person("second@example.com", "Second Owner")
    add_member(database, ws, second, "owner")
    path = f"/w/{ws}/members/{team.owner.user_id}/remove"
    second.web.post(path, form_page=path)
    assert member_role(database, ws, team.owner.user_id) is None
    assert database.get(keys.workspace(ws), consistent=True)["ownerCount"] == {"N": "1"}
