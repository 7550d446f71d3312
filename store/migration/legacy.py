"""The v1 data set: a realistic one for demos and tests, written exactly as v1 stored it."""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from store import keys
from store.batch import chunk_requests, write_chunk
from store.db import Database, RawItem, iso, s

DEMO_PASSWORD = "correct horse battery staple"  # noqa: S105 - printed demo password
ROLES_BY_POSITION = ("owner", "admin")
PEOPLE = ["Alice Archer", "Bob Baker", "Carol Chen", "Dev Desai", "Eve Evans", "Femi Falade"]
WORDS = (
    "quarterly report onboarding roadmap budget review launch checklist invoice vendor "
    "hiring retro design spec migration backlog offsite newsletter audit renewal demo"
).split()
TAGS = ["urgent", "finance", "ops", "design", "people", "later", "customer", "étude"]
KNOWN_SETTINGS: list[tuple[str, dict[str, Any]]] = [
    ("teamName", s("Acme Team")),
    ("timezone", s("Europe/Berlin")),
    ("defaultStatus", s("open")),
    ("itemsPerPage", {"N": "25"}),
    ("notifyOnAssign", {"BOOL": True}),
]


@dataclass(frozen=True)
class SeededAccount:
    email: str
    name: str
    role: str | None


# Attributes of every DynamoDB type, as real v1 rows carry them beside the known ones.
EVERY_TYPE: dict[str, Any] = {
    "priority": {"N": "3"},
    "estimate": {"N": "3.1415926535897932384626433832795028841"},
    "bigCounter": {"N": "1234567895171680000000000000000000000000"},
    "tiny": {"N": "1E-130"},
    "attachment": {"B": b"\x00\x01\xfe\xff"},
    "watchers": {"SS": ["alice", "bob"]},
    "scores": {"NS": ["1", "2.5", "-3"]},
    "checksums": {"BS": [b"\x00\x01", b"\xff"]},
    "meta": {"M": {"source": s("import"), "depth": {"M": {"n": {"N": "2"}}}}},
    "history": {"L": [s("created"), {"N": "1"}, {"NULL": True}, {"BOOL": False}]},
    "archived": {"BOOL": False},
    "legacyRef": {"NULL": True},
    "emptyNote": s(""),
}


def _every_type(rng: random.Random) -> dict[str, Any]:
    return {
        **EVERY_TYPE,
        "priority": {"N": str(rng.randint(1, 5))},
        "attachment": {"B": rng.randbytes(16)},
    }


def build_dataset(
    items: int, settings: int, members: int, password_hash: str, *, seed: int | None = None
) -> tuple[list[RawItem], list[SeededAccount]]:
    """Rows for a v1 table: accounts, MEMBERS, SETTINGS and ITEM rows."""
    rng = random.Random(seed)  # noqa: S311 - demo data, not security
    now = datetime.now(UTC)
    rows: list[RawItem] = []
    seeded: list[SeededAccount] = []
    user_ids: list[str] = []
    # One account more than there are members: someone who was not in the v1 team.
    for position in range(members + 1):
        user_id = uuid.UUID(int=rng.getrandbits(128)).hex
        account = _account(position, is_member=position < members)
        rows += _account_rows(user_id, account, password_hash, position, now)
        if account.role:
            user_ids.append(user_id)
        seeded.append(account)
    rows += [_setting_row(position, now) for position in range(settings)]
    rows += [_item_row(rng, position, user_ids, now) for position in range(items)]
    return rows, seeded


def _account(position: int, *, is_member: bool) -> SeededAccount:
    if position < len(PEOPLE):
        name = PEOPLE[position]
        email = f"{name.split()[0].lower()}@example.com"
    else:  # one address per account (v1 had one account per e-mail too)
        name = f"Person {position + 1}"
        email = f"person{position + 1}@example.com"
    role = (ROLES_BY_POSITION[position] if position < 2 else "member") if is_member else None
    return SeededAccount(email, name, role)


def _account_rows(
    user_id: str, account: SeededAccount, password_hash: str, position: int, now: datetime
) -> list[RawItem]:
    """The profile and e-mail pointer v1 shares with v2, and the v1 member row if a member."""
    rows: list[RawItem] = [
        {
            **keys.user(user_id),
            "email": s(account.email),
            "name": s(account.name),
            "passwordHash": s(password_hash),
        },
        {**keys.email(account.email), "userId": s(user_id)},
    ]
    if account.role:
        joined = now - timedelta(days=400 - position)
        rows.append(
            {
                **keys.v1_member(user_id),
                "email": s(account.email),
                "role": s(account.role),
                "joinedAt": s(iso(joined)),
            }
        )
    return rows


def _setting_row(position: int, now: datetime) -> RawItem:
    if position < len(KNOWN_SETTINGS):
        name, value = KNOWN_SETTINGS[position]
    else:
        name, value = f"custom{position}", {"M": {"enabled": {"BOOL": True}}}
    return {**keys.v1_setting(name), "value": value, "updatedAt": s(iso(now))}


def _item_row(rng: random.Random, position: int, user_ids: list[str], now: datetime) -> RawItem:
    created = now - timedelta(minutes=rng.randint(1, 60 * 24 * 120))
    row: RawItem = {
        **keys.v1_item(uuid.UUID(int=rng.getrandbits(128)).hex[:16]),
        "title": s(" ".join(rng.sample(WORDS, 3)).capitalize()),
        "status": s(rng.choice(["open", "open", "done"])),
        "createdAt": s(iso(created)),
        "updatedAt": s(iso(created + timedelta(hours=rng.randint(0, 48)))),
        "createdBy": s(rng.choice(user_ids) if user_ids else "unknown"),
    }
    if rng.random() < 0.7:
        row["notes"] = s(f"Notes for item {position + 1}. " * rng.randint(1, 4))
    if rng.random() < 0.6:
        row["tags"] = {"SS": sorted(set(rng.sample(TAGS, rng.randint(1, 3))))}
    if position % 7 == 0:
        row.update(_every_type(rng))
    return row


def write_rows(db: Database, rows: list[RawItem], *, budget_seconds: float = 300.0) -> None:
    deadline = time.monotonic() + budget_seconds
    for chunk in chunk_requests({"PutRequest": {"Item": row}} for row in rows):
        write_chunk(db, chunk, deadline=deadline)


def has_data(db: Database) -> bool:
    """Whether the table holds v1 members or v2 workspaces already (demo seeding is skipped)."""
    return any(db.has_rows(pk) for pk in (keys.V1_MEMBERS_PK, keys.MIGRATION_PK))
