"""Password hashing: OWASP strength in production, v1 hashes, damaged hashes, lengths."""

from __future__ import annotations

from typing import Any

import pytest
from werkzeug.security import generate_password_hash

from blueprints.auth import passwords
from config import load_config
from tests.support.app import make_app
from tests.support.auth import spy_on_hashing, stored_hash
from tests.support.helpers import PASSWORD, WebClient, user_id_of

CHEAP = "pbkdf2:sha256:1000"
# OWASP Password Storage cheat sheet: scrypt N=2^17/r=8/p=1 or an equivalent trade-off.
OWASP_SCRYPT = {(131072, 8, 1), (65536, 8, 2), (32768, 8, 3), (16384, 8, 5), (8192, 8, 10)}


def _production_method() -> str:
    return load_config({"APP_ENV": "development"})["PASSWORD_HASH_METHOD"]


def test_the_production_method_meets_owasp():
    method = _production_method()
    name, *args = method.split(":")
    if name == "scrypt":
        assert tuple(map(int, args)) in OWASP_SCRYPT
    else:
        assert name == "pbkdf2" and args[0] == "sha256" and int(args[1]) >= 600_000


def test_registration_stores_a_salted_hash_made_with_the_production_method(
    ddb_client: Any, table_name: str
):
    """S14, with the real cost: one registration only (about a quarter of a second)."""
    method = _production_method()
    app = make_app(ddb_client, table_name, PASSWORD_HASH_METHOD=method)
    web = WebClient(app.test_client())

    assert web.register("alice@x.com", password=PASSWORD).status_code == 303

    database = app.extensions["db"]
    stored = stored_hash(database, user_id_of(database, "alice@x.com"))
    assert stored.startswith(method + "$")
    _, salt, digest = stored.split("$")
    assert len(salt) >= 16 and len(digest) == 128  # 64-byte scrypt output, hex
    assert PASSWORD not in stored


def test_hashing_the_same_password_twice_gives_different_salted_hashes():
    first = passwords.hash_password(PASSWORD, CHEAP)
    second = passwords.hash_password(PASSWORD, CHEAP)
    assert first != second and first.split("$")[1] != second.split("$")[1]


@pytest.mark.parametrize(
    ("stored", "password", "expected"),
    [
        (generate_password_hash("right one", method=CHEAP), "right one", True),
        (generate_password_hash("right one", method=CHEAP), "wrong one", False),
        (generate_password_hash("right one", method="pbkdf2:sha256:260000"), "right one", True),
        (generate_password_hash("right one", method="scrypt:1024:8:1"), "right one", True),
        (None, "anything", False),
        ("", "anything", False),
        ("garbage", "anything", False),
        ("plain$x$y", "x", False),
        ("plain$$anything", "anything", False),
        ("md5$salt$5f4dcc3b5aa765d61d8327deb882cf99", "password", False),
        ("pbkdf2:sha256:oops$salt$hash", "anything", False),
        ("scrypt:3:8:1$salt$hash", "anything", False),
    ],
    ids=lambda value: str(value)[:24],
)
def test_verify_costs_one_derivation_whatever_the_stored_hash(
    stored: str | None, password: str, expected: bool, monkeypatch: pytest.MonkeyPatch
):
    derivations = spy_on_hashing(monkeypatch)
    assert passwords.verify(stored, password, CHEAP) is expected
    assert len(derivations) == 1


@pytest.mark.parametrize(
    ("stored", "upgrade"),
    [
        ("pbkdf2:sha256:260000$salt$hash", True),
        ("scrypt:32768:8:1$salt$hash", True),
        ("scrypt:32768:8:3$salt$hash", False),
        ("scrypt:32768:8:30$salt$hash", True),
    ],
)
def test_needs_upgrade_compares_the_whole_method(stored: str, upgrade: bool):
    assert passwords.needs_upgrade(stored, "scrypt:32768:8:3") is upgrade


@pytest.mark.parametrize(
    ("length", "problem"),
    [(0, "at least"), (14, "at least"), (15, None), (64, None), (128, None), (129, "at most")],
)
def test_length_limits(length: int, problem: str | None):
    found = passwords.length_problem("p" * length)
    assert (found is None) if problem is None else (problem in found)


def test_limits_are_owasp_ones():
    assert passwords.MIN_LENGTH >= 15  # no MFA here
    assert passwords.MAX_LENGTH >= 64
