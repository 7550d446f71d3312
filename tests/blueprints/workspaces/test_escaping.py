"""User content is escaped on every page that shows it (S33): item fields, workspace and
member names, settings, invite addresses and v1 data, including attribute names."""

from __future__ import annotations

import re
from typing import Any

from store import keys
from store.db import s
from tests.support.helpers import WebClient
from tests.support.workspaces import add_member, create_workspace

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
HOVER = "' onmouseover='alert(1)"
SVG_EMAIL = "<svg/onload=alert(1)>@x.io"
RAW = [SCRIPT, "<img src=x onerror", "onmouseover='", "<svg/onload", "<b>"]


def assert_inert(html: str, where: str) -> None:
    for raw in RAW:
        assert raw not in html, f"{raw!r} unescaped on {where}"
    assert not re.search(r'<a\b[^>]*href="\s*(javascript|data|vbscript):', html, re.I), where


def test_payloads_in_every_field_render_escaped(app, database, person):
    owner = person("xss-owner@example.com", SCRIPT)
    ws = create_workspace(owner, IMG)
    colleague = person("xss-member@example.com", IMG)
    add_member(database, ws, colleague, "member")
    web = owner.web

    created = web.post(
        f"/w/{ws}/items/new",
        {"title": SCRIPT, "notes": IMG, "tags": f"{HOVER}, <b>bold</b>", "status": "open"},
    )
    assert created.status_code == 303
    item_id = next(
        row["SK"]["S"].split("#", 1)[1]
        for row in database.query_all(
            KeyConditionExpression="PK = :pk AND begins_with(SK, :i)",
            ExpressionAttributeValues={":pk": s(keys.workspace_pk(ws)), ":i": s("ITEM#")},
        )
    )
    # v1 data with hostile names and values, as a migrated row could carry.
    database.client.update_item(
        TableName=database.table,
        Key=keys.item(ws, item_id),
        UpdateExpression="SET #a = :v, #b = :m",
        ExpressionAttributeNames={"#a": "<b>name</b>", "#b": "meta"},
        ExpressionAttributeValues={":v": s(SCRIPT), ":m": {"M": {"<b>k</b>": s(IMG)}}},
    )
    database.client.put_item(
        TableName=database.table,
        Item={**keys.setting(ws, "<b>legacy</b>"), "value": s(SCRIPT), "updatedAt": s("x")},
    )
    web.post(
        f"/w/{ws}/settings",
        {"teamName": SCRIPT, "timezone": "UTC", "defaultStatus": "open", "itemsPerPage": "25"},
    )
    invite_page = web.post(f"/w/{ws}/invites/new", {"email": SVG_EMAIL, "role": "member"})
    assert invite_page.status_code == 200, web.text(invite_page)
    token = re.search(r"/invite/([A-Za-z0-9_\-]+)", web.text(invite_page)).group(1)
    invite_id = re.search(
        r"/invites/([0-9a-f]{32})/revoke", web.text(web.get(f"/w/{ws}/members"))
    ).group(1)

    pages: dict[str, Any] = {
        "invite created": invite_page,
        "workspaces": web.get("/workspaces"),
        "items": web.get(f"/w/{ws}/items"),
        "items by tag": web.get(f"/w/{ws}/items", query_string={"tag": HOVER}),
        "item": web.get(f"/w/{ws}/items/{item_id}"),
        "edit": web.get(f"/w/{ws}/items/{item_id}/edit"),
        "delete": web.get(f"/w/{ws}/items/{item_id}/delete"),
        "members": web.get(f"/w/{ws}/members"),
        "remove": web.get(f"/w/{ws}/members/{colleague.user_id}/remove"),
        "settings": web.get(f"/w/{ws}/settings"),
        "revoke": web.get(f"/w/{ws}/invites/{invite_id}/revoke"),
        "invite link (signed out)": WebClient(app.test_client()).get(f"/invite/{token}"),
        "invite link (other account)": colleague.web.get(f"/invite/{token}"),
        "invalid item form": web.post(
            f"/w/{ws}/items/new", {"title": "", "notes": SCRIPT, "tags": HOVER}
        ),
    }

    for where, response in pages.items():
        assert response.status_code in (200, 400), (where, response.status_code)
        assert_inert(response.get_data(as_text=True), where)
    item_page = pages["item"].get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in item_page
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in item_page
    assert "&lt;b&gt;name&lt;/b&gt;" in item_page
    assert "&#39; onmouseover=&#39;alert(1)" in pages["items"].get_data(as_text=True)
    assert "&lt;svg/onload=alert(1)&gt;@x.io" in pages["members"].get_data(as_text=True)
    assert "&lt;b&gt;legacy&lt;/b&gt;" in pages["settings"].get_data(as_text=True)
