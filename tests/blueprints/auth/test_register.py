"""Registration: validation, lengths, one account per e-mail, and what is stored."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from store import keys
from tests.support.auth import ACCESS_COOKIE, Person, auth_cookies_set, spy_on_hashing, stored_hash
from tests.support.helpers import PASSWORD, WebClient, rows_with, scan_all, user_id_of

EXISTING_EMAIL_MESSAGE = "This e-mail address cannot be used for a new account"


def test_registering_stores_a_lower_case_account_and_signs_in(web: WebClient, database: Any):
    response = web.register("  Alice@X.com ", name="  Alice    Archer ")

    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    assert sorted(auth_cookies_set(response)) == ["access_token_cookie", "csrf_access_token"]
    user_id = user_id_of(database, "alice@x.com")
    profile = database.get(keys.user(user_id), consistent=True)
    assert profile["email"] == {"S": "alice@x.com"}
    assert profile["name"] == {"S": "Alice Archer"}
    assert profile["passwordHash"]["S"].startswith("pbkdf2:sha256:1000$")
    assert [row["PK"]["S"] for row in rows_with(database, keys.EMAIL_PREFIX)] == [
        "EMAIL#alice@x.com"
    ]
    home = web.get("/")
    assert home.status_code == 200
    assert "Alice Archer" in web.text(home)


def test_extra_form_fields_are_not_stored(web: WebClient, database: Any):
    web.post(
        "/register",
        {
            "email": "alice@x.com",
            "name": "Alice",
            "password": PASSWORD,
            "isAdmin": "1",
            "role": "owner",
            "PK": "USER#admin",
            "passwordHash": "plain$x$y",
        },
    )

    profile = database.get(keys.user(user_id_of(database, "alice@x.com")), consistent=True)
    assert set(profile) == {
        *("PK", "SK", "email", "name", "passwordHash", "createdAt"),
        "emailUnconfirmed",  # new accounts start unconfirmed
    }
    assert profile["passwordHash"]["S"].startswith("pbkdf2:")


@pytest.mark.parametrize(
    ("email", "name", "password", "field", "message"),
    [
        ("", "Alice", PASSWORD, "email", "Enter your e-mail address."),
        ("not-an-address", "Alice", PASSWORD, "email", "like name@example.com"),
        ("a" * 250 + "@x.com", "Alice", PASSWORD, "email", "like name@example.com"),
        ("alice@x.com", "   ", PASSWORD, "name", "Enter your name"),
        ("alice@x.com", "A" * 101, PASSWORD, "name", "at most 100 characters"),
        ("alice@x.com", "Alice", "x" * 14, "password", "at least 15 characters"),
        ("alice@x.com", "Alice", "x" * 129, "password", "at most 128 characters"),
        ("alice@x.com", "Alice", "", "password", "at least 15 characters"),
    ],
)
def test_invalid_registration_explains_keeps_input_and_stores_nothing(
    web: WebClient, database: Any, email: str, name: str, password: str, field: str, message: str
):
    response = web.register(email, name=name, password=password)

    page = web.text(response)
    assert response.status_code == 400
    assert f'id="f-{field}-error"' in page
    assert message in page
    assert scan_all(database) == []
    assert ACCESS_COOKIE not in auth_cookies_set(response)
    if password:
        assert password not in page  # the typed password is never sent back
    if field != "name" and name.strip():
        assert f'value="{name}"' in page  # what was typed is kept


def test_a_64_character_passphrase_is_accepted_and_not_truncated(app: Any, web: WebClient):
    passphrase = "correct horse battery staple " * 2 + "and more"
    assert len(passphrase) == 66
    passphrase = passphrase[:64]

    assert web.register("alice@x.com", password=passphrase).status_code == 303
    other = WebClient(app.test_client())
    assert other.login("alice@x.com", passphrase[:-1]).status_code == 400
    assert other.login("alice@x.com", passphrase + "x").status_code == 400
    assert other.login("alice@x.com", passphrase).status_code == 303


def test_same_password_gives_different_salted_hashes(app: Any, database: Any):
    first = WebClient(app.test_client()).register("one@x.com", password=PASSWORD)
    second = WebClient(app.test_client()).register("two@x.com", password=PASSWORD)
    assert first.status_code == second.status_code == 303

    one = stored_hash(database, user_id_of(database, "one@x.com"))
    two = stored_hash(database, user_id_of(database, "two@x.com"))
    assert one != two
    assert one.split("$")[1] != two.split("$")[1]  # different salts


def test_a_two_megabyte_registration_is_refused_before_any_hashing(
    web: WebClient, database: Any, monkeypatch: pytest.MonkeyPatch
):
    derivations = spy_on_hashing(monkeypatch)
    token = web.csrf_from("/register")

    response = web.client.post(
        "/register",
        data={"csrf_token": token, "email": "a@x.com", "name": "A", "password": "p" * 2_000_000},
    )

    assert response.status_code == 413
    assert response.mimetype == "text/html"
    assert "too large" in web.text(response).lower()
    assert derivations == []
    assert scan_all(database) == []


def test_existing_email_is_refused_without_changing_the_account(
    app: Any, alice: Person, database: Any
):
    """The trade-off the code states: we send no e-mail, so registration cannot hide that an
    address is in use (OWASP's alternative is a "check your inbox" answer for both cases).
    The message says only that the address cannot be used and points at signing in; it does
    not name the owner, and nothing about the existing account changes."""
    before = scan_all(database)
    web = WebClient(app.test_client())

    response = web.register("ALICE@x.com", name="Mallory Moe", password="another long password")

    page = web.text(response)
    assert response.status_code == 400
    assert EXISTING_EMAIL_MESSAGE in page
    assert "sign in instead" in page
    assert "Alice Archer" not in page
    assert 'value="Mallory Moe"' in page  # the rest of the form is kept
    assert auth_cookies_set(response) == []
    assert scan_all(database) == before


@pytest.mark.local_only("moto is not safe under concurrent requests")
def test_simultaneous_registrations_of_one_address_make_exactly_one_account(
    app: Any, database: Any
):
    variants = ["Alice@X.com", "alice@x.com", "ALICE@X.COM", " alice@x.com", "aLiCe@x.CoM"] * 2
    browsers = [WebClient(app.test_client()) for _ in variants]
    tokens = [browser.csrf_from("/register") for browser in browsers]
    start = threading.Barrier(len(variants))
    statuses: list[int] = [0] * len(variants)

    def attempt(index: int) -> None:
        start.wait()
        response = browsers[index].client.post(
            "/register",
            data={
                "csrf_token": tokens[index],
                "email": variants[index],
                "name": f"Person {index}",
                "password": PASSWORD,
            },
        )
        statuses[index] = response.status_code

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(variants))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(statuses) == [303] + [400] * (len(variants) - 1)
    profiles = rows_with(database, keys.USER_PREFIX, keys.PROFILE_SK)
    pointers = rows_with(database, keys.EMAIL_PREFIX)
    assert [p["email"]["S"] for p in profiles] == ["alice@x.com"]
    assert [p["PK"]["S"] for p in pointers] == ["EMAIL#alice@x.com"]
    assert pointers[0]["userId"]["S"] == profiles[0]["PK"]["S"].removeprefix(keys.USER_PREFIX)


def test_names_and_addresses_are_escaped_on_every_page_showing_them(
    app: Any, web: WebClient, database: Any
):
    name = "<script>alert(1)</script>"
    email = "\"'><svg/onload=alert(1)>@x.com"
    assert web.register(email, name=name).status_code == 303

    home = web.text(web.get("/"))
    assert name not in home and "<svg/onload" not in home
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in home
    assert "&lt;svg/onload=alert(1)&gt;@x.com" in home

    again = WebClient(app.test_client())
    taken = again.text(again.register(email, name=name))
    assert name not in taken and "<svg/onload" not in taken
    assert "&#34;&#39;&gt;&lt;svg/onload=alert(1)&gt;@x.com" in taken

    failed = again.text(again.login(email, "not the password at all"))
    assert "<svg/onload" not in failed
