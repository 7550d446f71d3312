"""Workspaces as people use them in Chromium, each person in their own browser context:
the owner of the migrated workspace invites a colleague, who registers from the link and
works on the migrated items; a stranger sees nothing of it; a member cannot reach settings;
hostile text in every field renders as text (no dialog ever fires)."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from devtools.live_server import LiveServer
from tests.support.browser import PageFactory
from tests.support.journeys import fill_registration, unique_email
from tests.support.mailbox import confirm_in_browser

MIGRATION_TIMEOUT_MS = 60_000
SEEDED_ACCOUNT = re.compile(r"^\s+(\S+@\S+)\s+(.+?)\s{2,}(owner|admin|member)\s*$", re.M)
WORKSPACE_URL = re.compile(r"/w/([^/]+)/items")


def register(page: Page, email: str, name: str) -> None:
    """Register and confirm the address from the development mail page."""
    page.goto("/register")
    fill_registration(page, email, name)
    expect(page.get_by_role("navigation", name="Main")).to_contain_text(name)
    confirm_in_browser(page, email)


def sign_in(page: Page, email: str, password: str) -> None:
    page.goto("/login")
    form = page.get_by_role("form", name="Sign in")
    form.get_by_label("E-mail").fill(email)
    form.get_by_label("Password").fill(password)
    form.get_by_role("button", name="Sign in").click()


def seeded_owner(server: LiveServer) -> tuple[str, str]:
    printed = server.run_flask(
        "legacy", "seed", "--items", "12", "--settings", "5", "--members", "2", "--seed", "7"
    ).stdout
    password = re.search(r"password for every account: (.+)", printed)
    owners = [a for a in SEEDED_ACCOUNT.findall(printed) if a[2] == "owner"]
    assert password and owners, printed
    return owners[0][0], password.group(1).strip()


def section(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)


def invite(page: Page, email: str) -> str:
    """From a workspace page, invite ``email`` as a member; the link shown to copy."""
    section(page, "Members")
    page.get_by_role("link", name="Invite someone").click()
    form = page.get_by_role("form", name="Invite")
    form.get_by_label("Their e-mail address").fill(email)
    form.get_by_label("Role").select_option("member")
    form.get_by_role("button", name="Create invite").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Invite created")
    link = page.get_by_label(re.compile("Invite link for")).input_value()
    assert re.search(r"/invite/[A-Za-z0-9_-]{43}$", link), link
    return link


def team_of_two(
    new_page: PageFactory, team: str, owner_name: str, member_name: str
) -> tuple[Page, Page, str]:
    """An owner who registers and creates ``team``, and a member who registers and joins it
    through the invite link; both pages end on the workspace's items."""
    owner = new_page()
    register(owner, unique_email("owner"), owner_name)
    owner.get_by_label("Workspace name").fill(team)
    owner.get_by_role("button", name="Create workspace").click()
    expect(owner).to_have_url(WORKSPACE_URL)
    workspace_id = WORKSPACE_URL.search(owner.url).group(1)
    member_email = unique_email("member")
    link = invite(owner, member_email)
    member = new_page()
    register(member, member_email, member_name)
    member.goto(link)
    member.get_by_role("button", name=f"Join {team}").click()
    expect(member).to_have_url(WORKSPACE_URL)
    return owner, member, workspace_id


def item_titles(page: Page) -> list[str]:
    return page.locator(".item__title").all_inner_texts()


def test_an_owner_invites_a_colleague_who_registers_and_works_on_the_migrated_items(
    live_server: LiveServer, new_page: PageFactory
) -> None:
    owner_email, password = seeded_owner(live_server)
    owner = new_page()
    sign_in(owner, owner_email, password)
    owner.wait_for_url(WORKSPACE_URL, timeout=MIGRATION_TIMEOUT_MS)
    workspace_id = WORKSPACE_URL.search(owner.url).group(1)
    migrated = item_titles(owner)
    assert migrated, "the migrated items are listed"

    colleague_email = unique_email("colleague")
    link = invite(owner, colleague_email)

    colleague = new_page()
    colleague.goto(link)
    expect(colleague.get_by_role("heading", level=1)).to_contain_text("Join")
    colleague.get_by_role("link", name="Create an account").click()
    fill_registration(colleague, colleague_email, "Colin Colleague")
    expect(colleague).to_have_url(re.compile(r"/invite/"))
    confirm_in_browser(colleague, colleague_email)
    colleague.goto(link)
    colleague.get_by_role("button", name=re.compile("^Join ")).click()
    expect(colleague).to_have_url(re.compile(rf"/w/{workspace_id}/items"))
    expect(colleague.get_by_role("status")).to_contain_text("Welcome to")
    assert item_titles(colleague)[:5] == migrated[:5]

    # Work on a migrated item: open it, edit its title, mark it done.
    colleague.locator(".item__title").first.click()
    colleague.get_by_role("link", name="Edit").click()
    colleague.get_by_label("Title").fill("Checked by Colin")
    colleague.get_by_role("button", name="Save item").click()
    expect(colleague.get_by_role("heading", level=1)).to_have_text("Checked by Colin")
    section(colleague, "Items")
    colleague.get_by_role("button", name="Mark done “Checked by Colin”").click()
    expect(colleague.locator(".item--done .item__title").first).to_have_text("Checked by Colin")

    # The owner sees the colleague's work; a stranger sees nothing of the workspace.
    owner.goto(f"/w/{workspace_id}/items")
    expect(owner.get_by_role("link", name="Checked by Colin")).to_be_visible()
    stranger = new_page()
    register(stranger, unique_email("stranger"), "Stella Stranger")
    response = stranger.goto(f"/w/{workspace_id}/items")
    assert response is not None and response.status == 404
    expect(stranger.get_by_role("link", name="Checked by Colin")).to_have_count(0)
    assert new_page.dialogs == [] and new_page.page_errors == []


def test_a_member_cannot_reach_settings(live_server: LiveServer, new_page: PageFactory) -> None:
    owner, member, workspace_id = team_of_two(new_page, "Small team", "Olga Owner", "Max Member")
    nav = member.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Items")).to_be_visible()
    expect(nav.get_by_role("link", name="Settings")).to_have_count(0)

    response = member.goto(f"/w/{workspace_id}/settings")
    assert response is not None and response.status == 403
    expect(member.get_by_role("heading", level=1)).to_have_text("You can't do that here")
    expect(
        member.get_by_text("Only the workspace's owners and admins can do that.")
    ).to_be_visible()


XSS = {
    "script": "<script>alert('script')</script>",
    "img": '"><img src=x onerror=alert("img")>',
    "hover": "' onmouseover='alert(1)' x='",
    "svg": "<svg onload=alert('svg')>",
}


def test_hostile_text_in_every_field_renders_as_text_and_no_dialog_fires(
    live_server: LiveServer, new_page: PageFactory
) -> None:
    owner = new_page()
    register(owner, unique_email("xss"), XSS["svg"])
    owner.get_by_label("Workspace name").fill(XSS["img"])
    owner.get_by_role("button", name="Create workspace").click()
    expect(owner).to_have_url(WORKSPACE_URL)
    workspace_id = WORKSPACE_URL.search(owner.url).group(1)

    owner.get_by_role("link", name="New item").click()
    owner.get_by_label("Title").fill(XSS["script"])
    owner.get_by_label("Notes").fill(XSS["img"])
    owner.get_by_label("Tags").fill(XSS["hover"].replace(",", "") + ", " + XSS["svg"])
    owner.get_by_role("button", name="Add item").click()
    expect(owner.locator(".item__title").first).to_have_text(XSS["script"])

    section(owner, "Settings")
    owner.get_by_label("Team name").fill(XSS["script"])
    owner.get_by_role("button", name="Save settings").click()
    expect(owner.get_by_label("Team name")).to_have_value(XSS["script"])

    section(owner, "Members")
    owner.get_by_role("link", name="Invite someone").click()
    # The browser's own e-mail check would stop this address; the server's accepts it.
    owner.get_by_role("form", name="Invite").evaluate("form => { form.noValidate = true; }")
    owner.get_by_label("Their e-mail address").fill("<svg/onload=alert(9)>@x.io")
    owner.get_by_role("button", name="Create invite").click()
    link = owner.get_by_label(re.compile("Invite link for")).input_value()

    base = f"/w/{workspace_id}"
    for path in ("/workspaces", f"{base}/items", f"{base}/members", f"{base}/settings"):
        owner.goto(path)
        expect(owner.get_by_role("heading", level=1)).to_be_visible()
    owner.goto(f"{base}/items")
    owner.locator(".item__title").first.click()
    expect(owner.get_by_role("heading", level=1)).to_have_text(XSS["script"])
    expect(owner.locator(".notes")).to_have_text(XSS["img"])
    owner.locator(".tag").first.hover()
    owner.get_by_role("link", name="Delete…").click()
    expect(owner.get_by_text(XSS["script"])).to_be_visible()
    owner.get_by_role("link", name=XSS["img"]).click()  # the workspace name in the nav

    visitor = new_page()
    visitor.goto(link)
    expect(visitor.get_by_role("heading", level=1)).to_have_text("Join " + XSS["img"])

    assert new_page.dialogs == [], new_page.dialogs
    assert new_page.page_errors == [], new_page.page_errors
