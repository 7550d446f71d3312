"""What one workspace page reads before its view runs, in ONE strongly consistent
BatchGetItem: the session's revocation row, the workspace, the signed-in person's membership,
the settings the page shows and the rows its URL names (an item, a member, an invite), or
the person's preferences.

Views name what they need (``settings=("timezone",)``, ``extras={"item": item_id}``) and get
typed values back by the same names; the keys and the positions in the batch stay here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import keys
from .accounts import Account, SessionRevoked, session_rows
from .db import Database, RawItem, text
from .invites import invite_from_row
from .items import item_from_row
from .sessions import SessionRef, check
from .settings import Settings, from_rows, setting_keys
from .workspaces import Member, Workspace, member_from_row, workspace_from_row


@dataclass(frozen=True)
class _Extra:
    """How to find one kind of extra row (from the workspace and an id) and what it becomes."""

    key: Callable[[str, str], keys.Key]
    typed: Callable[[RawItem], Any]


def _last_workspace(row: RawItem) -> str | None:
    return text(row, "lastWorkspaceId") or None


# The rows a page may ask for beside its workspace, by name; the id is the URL's (or, for
# "prefs", the signed-in person's).
EXTRAS: dict[str, _Extra] = {
    "item": _Extra(keys.item, item_from_row),
    "member": _Extra(keys.member, member_from_row),
    "invite": _Extra(keys.invite, invite_from_row),
    "prefs": _Extra(lambda _workspace_id, user_id: keys.user_prefs(user_id), _last_workspace),
}


@dataclass(frozen=True)
class WorkspacePage:
    """A workspace page's data; ``workspace`` or ``member`` is None when the page is not
    the person's to see (unknown workspace, or not a member)."""

    workspace: Workspace | None
    member: Member | None
    settings: Settings
    # Each extra asked for, typed ("item" -> Item, "member" -> Member, "invite" -> Invite,
    # "prefs" -> the last workspace id), or None when its row does not exist.
    extras: dict[str, Any] = field(default_factory=dict)
    # The signed-in person's profile, when the session was checked against it.
    account: Account | None = None


def load_page(
    db: Database,
    session_id: str,
    workspace_id: str,
    user_id: str,
    *,
    settings: Iterable[str] = (),
    extras: Mapping[str, str] | None = None,
    name: str = "",
    generation: int | None = None,
) -> WorkspacePage:
    """Read a workspace page's rows at once; ``name`` is the person's display name, carried
    on ``member``. Raises ``SessionRevoked`` when the session was signed out.

    With the session's ``generation`` the account's profile joins the same BatchGetItem
    (``store.sessions.check``): a session signed out everywhere, or of a deleted account,
    is refused too, and the page gets the profile (``account``)."""
    setting_names = list(settings)
    wanted_extras = dict(extras or {})
    unknown = set(wanted_extras) - set(EXTRAS)
    if unknown:
        raise ValueError(f"unknown extra rows {sorted(unknown)}")
    wanted_keys = [
        keys.workspace(workspace_id),
        keys.member(workspace_id, user_id),
        *setting_keys(workspace_id, setting_names),
        *(EXTRAS[kind].key(workspace_id, id_) for kind, id_ in wanted_extras.items()),
    ]
    account = None
    if generation is None:
        revoked, rows = session_rows(db, session_id, wanted_keys)
        if revoked:
            raise SessionRevoked
    else:
        account, rows = check(db, SessionRef(session_id, user_id, generation), wanted_keys)
    workspace_row, member_row = rows[0], rows[1]
    setting_rows = rows[2 : 2 + len(setting_names)]
    extra_rows = rows[2 + len(setting_names) :]
    return WorkspacePage(
        workspace=workspace_from_row(workspace_row) if workspace_row else None,
        member=member_from_row(member_row, name) if member_row else None,
        settings=from_rows(dict(zip(setting_names, setting_rows, strict=True))),
        extras={
            kind: EXTRAS[kind].typed(row) if row is not None else None
            for kind, row in zip(wanted_extras, extra_rows, strict=True)
        },
        account=account,
    )
