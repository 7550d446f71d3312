"""Validation of the workspace forms. Each reads only its allow-listed fields (anything else
a request carries is ignored) and gives back what the person typed, so a form with errors
comes back as they left it."""

from __future__ import annotations

import re
import zoneinfo
from functools import cache
from typing import Any

from werkzeug.datastructures import MultiDict

from blueprints.auth.forms import email_problem
from store import items as store_items
from store import settings as store_settings
from store import workspaces as store_workspaces
from web.forms import Form

MAX_TITLE = 200
MAX_TAG = 40
MAX_TAGS = 20
# Notes may use most of an item's 400 KB; what is left covers the other attributes, and the
# store checks the whole row's size on every write (a migrated row may carry more).
MAX_NOTES_BYTES = 350 * 1024
MAX_TEAM_NAME = 100


def _one_line(value: str) -> str:
    return " ".join(value.split())


def parse_tags(raw: str) -> tuple[list[str], str | None]:
    """Comma-separated tags: trimmed, empty ones dropped, duplicates removed (first kept)."""
    tags: list[str] = []
    for part in raw.split(","):
        tag = _one_line(part)
        if tag and tag not in tags:
            tags.append(tag)
    too_long = [tag for tag in tags if len(tag) > MAX_TAG]
    if too_long:
        return tags, f"Keep each tag to {MAX_TAG} characters; “{too_long[0][:MAX_TAG]}…” is longer."
    if len(tags) > MAX_TAGS:
        return tags, f"Use at most {MAX_TAGS} tags; this has {len(tags)}."
    return tags, None


def item_form(data: MultiDict[str, str], *, locked: frozenset[str] = frozenset()) -> Form:
    """The item form: ``title``, ``notes``, ``tags``, ``status``; nothing else is read."""
    form = Form(
        {
            "title": data.get("title", "").strip(),
            "notes": data.get("notes", "").replace("\r\n", "\n"),
            "tags": data.get("tags", ""),
            "status": data.get("status", "open"),
        }
    )
    values, errors = form.values, form.errors
    if "title" not in locked:
        if not values["title"]:
            errors["title"] = "Enter a title."
        elif len(values["title"]) > MAX_TITLE:
            errors["title"] = (
                f"Keep the title to {MAX_TITLE} characters; it has {len(values['title'])}."
            )
    if "notes" not in locked:
        size = len(values["notes"].encode())
        if size > MAX_NOTES_BYTES:
            errors["notes"] = (
                f"Notes can hold about {MAX_NOTES_BYTES // 1024} KB of text; these are "
                f"{size // 1024} KB. Shorten them or keep the rest in a linked document."
            )
    if "tags" not in locked:
        tags, problem = parse_tags(values["tags"])
        if problem:
            errors["tags"] = problem
        form.values["tag_list"] = tags
    if "status" not in locked and values["status"] not in store_items.STATUSES:
        errors["status"] = "Choose open or done."
    return form


def item_fields(form: Form) -> store_items.ItemFields:
    return store_items.ItemFields(
        title=form.values["title"],
        notes=form.values["notes"],
        tags=tuple(form.values.get("tag_list", ())),
        status=form.values["status"],
    )


def workspace_form(data: MultiDict[str, str]) -> Form:
    form = Form({"name": _one_line(data.get("name", ""))})
    if not form.values["name"]:
        form.errors["name"] = "Enter a name for the workspace."
    elif len(form.values["name"]) > store_workspaces.MAX_NAME:
        form.errors["name"] = f"Keep the name to {store_workspaces.MAX_NAME} characters."
    return form


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def valid_timezone(name: str) -> bool:
    """An IANA zone name this machine knows (system tz database or the tzdata package)."""
    zones = _zones()
    if zones:
        return name in zones
    # No zone list at all: only names shaped like IANA ones, then ask zoneinfo.
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*", name):
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def timezone_choices() -> list[str]:
    return sorted(_zones()) or ["UTC"]


def settings_form(data: MultiDict[str, str], locked: frozenset[str]) -> Form:
    """The known settings, typed; a setting whose stored type is foreign is not read."""
    form = Form(
        {
            "teamName": _one_line(data.get("teamName", "")),
            "timezone": data.get("timezone", "").strip(),
            "defaultStatus": data.get("defaultStatus", ""),
            "itemsPerPage": data.get("itemsPerPage", "").strip(),
            "notifyOnAssign": data.get("notifyOnAssign") == "on",
        }
    )
    values, errors = form.values, form.errors
    typed: dict[str, Any] = {}
    if len(values["teamName"]) > MAX_TEAM_NAME:
        errors["teamName"] = f"Keep the team name to {MAX_TEAM_NAME} characters."
    typed["teamName"] = values["teamName"]
    if not valid_timezone(values["timezone"]):
        errors["timezone"] = "Choose a time zone from the list, such as Europe/Berlin or UTC."
    typed["timezone"] = values["timezone"]
    if values["defaultStatus"] not in store_items.STATUSES:
        errors["defaultStatus"] = "Choose open or done."
    typed["defaultStatus"] = values["defaultStatus"]
    low, high = store_settings.PAGE_SIZE_RANGE
    try:
        per_page = int(values["itemsPerPage"])
    except ValueError:
        per_page = None
    if per_page is None or not low <= per_page <= high:
        errors["itemsPerPage"] = f"Enter a whole number from {low} to {high}."
    typed["itemsPerPage"] = per_page
    typed["notifyOnAssign"] = values["notifyOnAssign"]
    for name in locked:
        errors.pop(name, None)
        typed.pop(name, None)
    form.values["typed"] = typed
    return form


def changed_settings(form: Form, current: store_settings.Settings) -> dict[str, Any]:
    """Only what differs from what is stored; an emptied team name removes the setting."""
    changes: dict[str, Any] = {}
    for name, value in form.values["typed"].items():
        stored = name in current.present
        if name == "teamName" and not value:
            if stored:
                changes[name] = None
            continue
        if stored and current.values[name] == value:
            continue
        if not stored and value == store_settings.KNOWN[name].default:
            continue
        changes[name] = value
    return changes


def invite_form(data: MultiDict[str, str], allowed_roles: tuple[str, ...]) -> Form:
    form = Form({"email": data.get("email", "").strip(), "role": data.get("role", "member")})
    if problem := email_problem(form.values["email"]):
        form.errors["email"] = problem
    if form.values["role"] not in allowed_roles:
        form.errors["role"] = "Choose one of the roles offered."
    return form
