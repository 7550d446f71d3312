"""An owner renames a workspace and then deletes it, in Chromium, while a member watches it
follow and then disappear.

With ``TEAMAPP_SCREENSHOTS=<folder>`` set, the rename, delete and progress pages are saved
there as PNGs (``docs/screenshots`` for the README)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from playwright.sync_api import Page, expect

from devtools.live_server import LiveServer
from tests.e2e.test_workspace_journeys import team_of_two
from tests.support.browser import PageFactory


def screenshot(page: Page, name: str) -> None:
    """Save the page for the docs, when asked to (never in an ordinary test run)."""
    folder = os.environ.get("TEAMAPP_SCREENSHOTS")
    if folder:
        page.set_viewport_size({"width": 1280, "height": 860})
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def settings(page: Page) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Settings")


def test_an_owner_renames_then_deletes_a_workspace_and_the_member_follows(
    live_server: LiveServer, new_page: PageFactory
) -> None:
    owner, member, workspace_id = team_of_two(new_page, "Rocket team", "Rita Rocket", "Milo Member")

    # Rename: the owner's pages and the member's list of workspaces follow.
    settings(owner)
    owner.get_by_role("link", name="Rename it").click()
    form = owner.get_by_role("form", name="Rename the workspace")
    form.get_by_label("New name").fill("Rocket crew")
    screenshot(owner, "workspace-rename")
    form.get_by_role("button", name="Rename workspace").click()
    expect(owner.get_by_role("status")).to_contain_text("Renamed the workspace to Rocket crew")
    member.goto("/workspaces")
    expect(member.get_by_role("button", name="Rocket crew")).to_be_visible()

    # Delete: typing the wrong name deletes nothing; the right one takes it from everyone.
    settings(owner)
    screenshot(owner, "workspace-settings-owner")
    owner.get_by_role("link", name=re.compile("Delete this workspace")).click()
    confirm = owner.get_by_label(re.compile("Type the workspace's name"))
    confirm.fill("Rocket crew")
    screenshot(owner, "workspace-delete")
    confirm.fill("rocket crew")
    owner.get_by_role("button", name="Delete this workspace").click()
    expect(owner.get_by_role("alert")).to_contain_text("exactly as shown")
    owner.get_by_label(re.compile("Type the workspace's name")).fill("Rocket crew")
    owner.get_by_role("button", name="Delete this workspace").click()
    expect(owner.get_by_role("heading", level=1)).to_have_text(
        re.compile("Rocket crew is deleted"), timeout=30_000
    )
    screenshot(owner, "workspace-deleted")

    member.goto("/workspaces")
    expect(member.get_by_role("button", name="Rocket crew")).to_have_count(0)
    response = member.goto(f"/w/{workspace_id}/items")
    assert response is not None and response.status == 410
    expect(member.get_by_role("heading", level=1)).to_have_text("This workspace was deleted")
    assert new_page.dialogs == [] and new_page.page_errors == []
