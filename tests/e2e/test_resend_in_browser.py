"""The form-expired page in a real browser: Chromium marks our own form's post as
``Sec-Fetch-Site: same-origin``, so a stale form comes back with what was typed and sends
again (tests/web/test_resend_origin.py covers every header combination without a browser)."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.test_auth_journeys import (
    assert_quiet,
    expect_signed_in,
    register,
    sign_in,
    sign_out,
    unique_email,
)
from tests.support.browser import PageFactory


def test_a_form_left_open_across_signing_in_again_is_offered_again_and_sends(
    page: Page, new_page: PageFactory
) -> None:
    email = unique_email("grace")
    register(page, email, "Grace Hopper")
    expect_signed_in(page, "Grace Hopper")
    page.goto("/workspaces")
    form = page.get_by_role("form", name="Create a workspace")
    form.get_by_label("Workspace name").fill("Compilers, kept")

    # Meanwhile, in another tab of the same browser: signed out and in again (a new session,
    # so a new CSRF value), which leaves the first tab's form stale.
    other = page.context.new_page()
    other.goto("/workspaces")
    sign_out(other)
    sign_in(other, email)
    expect_signed_in(other, "Grace Hopper")
    other.close()

    form.get_by_role("button", name="Create workspace").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("That request did not look right")
    expect(page.get_by_text("This form had expired, so nothing was saved")).to_be_visible()
    again = page.get_by_role("form", name="Send the form again")
    expect(again).to_contain_text("Compilers, kept")
    again.get_by_role("button", name="Send again").click()

    expect(page).to_have_url(re.compile(r"/w/[^/]+/items"))
    expect(page.get_by_role("main")).to_contain_text("Compilers, kept")
    assert_quiet(new_page)
