"""Accounts as people use them in Chromium, with mail read from the development mail page
(/dev/mail) as a developer running `make run` would: register, confirm and accept an
invite; forget a password, reset it, and find the old sessions gone; try to delete an
account that is the last owner of a workspace."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from devtools.live_server import LiveServer
from tests.support.browser import PageFactory
from tests.support.journeys import fill_registration, unique_email
from tests.support.mailbox import confirm_in_browser

NEW_PASSWORD = "another long enough password"
WORKSPACE_URL = re.compile(r"/w/([^/]+)/items")


def registered(page: Page, email: str, name: str) -> None:
    """Fill in the registration form on the page shown, and wait until signed in."""
    fill_registration(page, email, name)
    expect(page.get_by_role("navigation", name="Main")).to_contain_text(name)


def create_workspace(page: Page, name: str) -> None:
    page.goto("/workspaces")
    page.get_by_label("Workspace name").fill(name)
    page.get_by_role("button", name="Create workspace").click()
    expect(page).to_have_url(WORKSPACE_URL)


def invite(page: Page, email: str) -> str:
    """From a workspace page, invite ``email`` as a member; the link shown to copy."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Members").click()
    page.get_by_role("link", name="Invite someone").click()
    form = page.get_by_role("form", name="Invite")
    form.get_by_label("Their e-mail address").fill(email)
    form.get_by_role("button", name="Create invite").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Invite created")
    return page.get_by_label(re.compile("Invite link for")).input_value()


def open_mail(page: Page, to: str, subject: str) -> None:
    page.goto("/dev/mail")
    page.locator("tr", has_text=to).filter(has_text=subject).first.get_by_role("link").click()


def test_register_confirm_from_the_mail_then_accept_an_invite(
    live_server: LiveServer, new_page: PageFactory
) -> None:
    owner = new_page()
    owner_email = unique_email("owner")
    owner.goto("/register")
    registered(owner, owner_email, "Orla Owner")
    confirm_in_browser(owner, owner_email)
    create_workspace(owner, "Confirmed team")
    invitee_email = unique_email("invitee")
    link = invite(owner, invitee_email)

    invitee = new_page()
    invitee.goto(link)
    invitee.get_by_role("link", name="Create an account").click()
    registered(invitee, invitee_email, "Ivy Invitee")
    expect(invitee).to_have_url(re.compile(r"/invite/"))
    # Not confirmed yet: the invite page says so instead of offering to join.
    expect(invitee.get_by_text("Confirm your e-mail address before you join")).to_be_visible()
    expect(invitee.get_by_role("button", name=re.compile("^Join "))).to_have_count(0)

    confirm_in_browser(invitee, invitee_email)
    invitee.goto(link)
    invitee.get_by_role("button", name="Join Confirmed team").click()
    expect(invitee).to_have_url(WORKSPACE_URL)
    expect(invitee.get_by_role("status")).to_contain_text("Welcome to Confirmed team")
    assert new_page.dialogs == [] and new_page.page_errors == []


def test_forgot_password_reset_and_the_old_sessions_are_gone(
    live_server: LiveServer, new_page: PageFactory
) -> None:
    email = unique_email("forgetful")
    laptop = new_page()
    laptop.goto("/register")
    registered(laptop, email, "Fern Forgetful")

    phone = new_page()
    phone.goto("/login")
    phone.get_by_role("link", name="Forgot your password?").click()
    phone.get_by_label("E-mail").fill(email)
    phone.get_by_role("button", name="Send me a reset link").click()
    expect(phone.get_by_role("heading", level=1)).to_have_text("Check your mail")

    open_mail(phone, email, "Reset your")
    phone.locator('.mail-body a[href*="/password/reset/"]').click()
    expect(phone.get_by_role("heading", level=1)).to_have_text("Choose a new password")
    phone.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    phone.get_by_role("button", name="Save the new password").click()
    expect(phone).to_have_url(re.compile(r"/login$"))
    expect(phone.get_by_role("status")).to_contain_text("every session was signed out")

    # The laptop's session is gone; the new password works.
    laptop.goto("/account")
    expect(laptop).to_have_url(re.compile(r"/login\?next="))
    form = phone.get_by_role("form", name="Sign in")
    form.get_by_label("E-mail").fill(email)
    form.get_by_label("Password").fill(NEW_PASSWORD)
    form.get_by_role("button", name="Sign in").click()
    expect(phone.get_by_role("navigation", name="Main")).to_contain_text("Fern Forgetful")
    open_mail(phone, email, "was changed")
    expect(phone.get_by_role("heading", level=1)).to_contain_text("was changed")


def test_deleting_the_account_is_refused_for_the_last_owner(
    live_server: LiveServer, new_page: PageFactory
) -> None:
    page = new_page()
    page.goto("/register")
    registered(page, unique_email("solo"), "Sol Owner")
    create_workspace(page, "Solo works")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Sol Owner").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your account")
    page.get_by_role("link", name="Delete your account…").click()
    expect(page.get_by_role("alert")).to_contain_text("only owner")
    expect(page.locator(".blocking-workspaces")).to_have_text("Solo works")
    expect(page.get_by_role("button", name="Delete my account")).to_have_count(0)
