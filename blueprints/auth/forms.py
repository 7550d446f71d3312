"""Validation of the sign-in and registration forms; values come back as typed."""

from __future__ import annotations

import re

from werkzeug.datastructures import MultiDict

from blueprints.auth import passwords
from web.forms import Form

EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_EMAIL = 254
MAX_NAME = 100


def email_problem(email: str) -> str | None:
    if not email:
        return "Enter your e-mail address."
    if len(email) > MAX_EMAIL or not EMAIL_PATTERN.match(email):
        return "Enter an e-mail address like name@example.com."
    return None


def registration(data: MultiDict[str, str]) -> Form:
    form = Form(
        {
            "email": data.get("email", "").strip(),
            "name": " ".join(data.get("name", "").split()),
            "password": data.get("password", ""),
        }
    )
    if problem := email_problem(form.values["email"]):
        form.errors["email"] = problem
    if not form.values["name"]:
        form.errors["name"] = "Enter your name, as your team should see it."
    elif len(form.values["name"]) > MAX_NAME:
        form.errors["name"] = f"Use at most {MAX_NAME} characters."
    if problem := passwords.length_problem(form.values["password"]):
        form.errors["password"] = problem
    return form


def sign_in(data: MultiDict[str, str]) -> Form:
    form = Form({"email": data.get("email", "").strip(), "password": data.get("password", "")})
    if not form.values["email"] or len(form.values["email"]) > MAX_EMAIL:
        form.errors["email"] = "Enter your e-mail address."
    if not form.values["password"] or len(form.values["password"]) > passwords.MAX_LENGTH:
        form.errors["password"] = "Enter your password."  # noqa: S105 - a message
    return form
