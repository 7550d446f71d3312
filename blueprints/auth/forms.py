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


def name_problem(name: str) -> str | None:
    if not name:
        return "Enter your name, as your team should see it."
    if len(name) > MAX_NAME:
        return f"Use at most {MAX_NAME} characters."
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
    if problem := name_problem(form.values["name"]):
        form.errors["name"] = problem
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


def email_only(data: MultiDict[str, str]) -> Form:
    """One field, ``email``: the forgotten-password form, and a new address on /account."""
    form = Form({"email": data.get("email", "").strip()})
    if problem := email_problem(form.values["email"]):
        form.errors["email"] = problem
    return form


def new_password(data: MultiDict[str, str], field: str = "password") -> Form:
    """A new password, by the same rules as registration."""
    form = Form({field: data.get(field, "")})
    if problem := passwords.length_problem(form.values[field]):
        form.errors[field] = problem
    return form


def name_only(data: MultiDict[str, str]) -> Form:
    form = Form({"name": " ".join(data.get("name", "").split())})
    if problem := name_problem(form.values["name"]):
        form.errors["name"] = problem
    return form
