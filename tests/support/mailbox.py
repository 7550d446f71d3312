"""The mail a test app sent: read from its outbox folder (``MAIL_OUTBOX``; tests/support/app.py
points it at a temporary folder per app), newest first, with the links in each body."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from web import outbox
from web.outbox import StoredMail

LINK = re.compile(r"https?://[^\s<>\"']+")
CONFIRM_LINKS = '.mail-body a[href*="/confirm/"], .mail-body a[href*="/account/email/"]'


def messages(app_or_folder: Any) -> list[StoredMail]:
    """Every message, newest first; give the Flask app or the outbox folder itself."""
    if isinstance(app_or_folder, str | Path):
        config = {"MAIL_OUTBOX": str(app_or_folder)}
    else:
        config = app_or_folder.config
    return outbox.list_mail(config)


def to(app_or_folder: Any, address: str) -> list[StoredMail]:
    """The messages sent to ``address``, newest first."""
    wanted = address.strip().lower()
    return [m for m in messages(app_or_folder) if m.to.strip().lower() == wanted]


def last_to(app_or_folder: Any, address: str, subject_contains: str = "") -> StoredMail:
    found = [m for m in to(app_or_folder, address) if subject_contains in m.subject]
    assert found, f"no mail to {address} with {subject_contains!r} in the subject"
    return found[0]


def links(message: StoredMail) -> list[str]:
    return LINK.findall(message.body)


def path_of_link(message: StoredMail, contains: str) -> str:
    """The path (and query) of the first link in the body containing ``contains``."""
    for link in links(message):
        if contains in link:
            return "/" + link.split("://", 1)[1].split("/", 1)[1]
    raise AssertionError(f"no link with {contains!r} in {message.subject!r}")


def confirm_in_browser(page: Any, address: str) -> None:
    """In Chromium, as a person would: open /dev/mail, the newest confirmation mail to
    ``address``, its link, and press Confirm; the page is left on where that lands."""
    from playwright.sync_api import expect

    page.goto("/dev/mail")
    row = page.locator("tr", has_text=address).filter(has_text="Confirm your").first
    row.get_by_role("link").click()
    page.locator(
        '.mail-body a[href*="/confirm/"], .mail-body a[href*="/account/email/"]'
    ).first.click()
    page.get_by_role("button", name=re.compile("^Confirm ")).click()
    expect(page.get_by_role("status")).to_contain_text("confirmed")
