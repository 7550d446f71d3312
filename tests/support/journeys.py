"""Steps Chromium journeys share: a unique address, and the registration form filled in."""

from __future__ import annotations

import uuid
from typing import Any

PASSWORD = "a long enough test password"


def unique_email(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}@example.com"


def fill_registration(page: Any, email: str, name: str, password: str = PASSWORD) -> None:
    form = page.get_by_role("form", name="Create an account")
    form.get_by_label("E-mail").fill(email)
    form.get_by_label("Your name").fill(name)
    form.get_by_label("Password").fill(password)
    form.get_by_role("button", name="Create account").click()
