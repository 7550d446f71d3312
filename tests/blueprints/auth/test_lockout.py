"""Sign-in throttling that slows an attacker without locking the owner out (S20): a wait per
address that doubles with consecutive failures up to a cap, refused attempts neither checked
nor counted, the right password working once the wait is over, a per-client limit, and
counters claimed atomically so concurrent guesses cannot overtake them."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import pytest

from blueprints.auth import devices
from store import keys, signin_limits
from tests.support.app import make_app
from tests.support.auth import (
    Person,
    auth_cookies_set,
    register,
    set_cookies,
    spy_on_hashing,
)
from tests.support.helpers import WebClient

WRONG = "not the right password"
START = 1_800_000_000.0


class Clock(SimpleNamespace):
    """Stands in for the ``time`` module inside store.signin_limits: time moves when told."""

    def __init__(self, now: float = START) -> None:
        super().__init__(now=now)

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fixed = Clock()
    monkeypatch.setattr(signin_limits, "time", fixed)
    return fixed


def backoff_row(database: Any, email: str) -> dict[str, Any] | None:
    return database.get(keys.login_backoff(email), consistent=True)


def browser(app: Any, client: str = "192.0.2.10") -> WebClient:
    test_client = app.test_client()
    test_client.environ_base["REMOTE_ADDR"] = client
    return WebClient(test_client)


# --- the schedule ------------------------------------------------------------------------------


def test_the_wait_doubles_from_one_second_after_three_failures_up_to_five_minutes():
    policy = signin_limits.Policy()
    assert [policy.delay(k) for k in range(14)] == [
        0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300,
    ]  # fmt: skip
    assert policy.delay(10_000) == 300
    assert policy.capped_from() == 12


# --- through the sign-in page ------------------------------------------------------------------


def test_the_owner_signs_in_as_soon_as_the_wait_is_over(
    app: Any, alice: Person, database: Any, clock: Clock
):
    web = browser(app)
    for _ in range(3):
        assert web.login(alice.email, WRONG).status_code == 400

    waiting = web.login(alice.email, alice.password)

    assert waiting.status_code == 429
    assert waiting.headers["Retry-After"] == "1"
    assert "try again in 1 second." in web.text(waiting)
    assert auth_cookies_set(waiting) == []
    assert backoff_row(database, alice.email)["failures"] == {"N": "3"}  # refused: not counted

    clock.now += 1
    assert web.login(alice.email, alice.password).status_code == 303
    assert backoff_row(database, alice.email) is None  # a success starts afresh


def test_each_failure_doubles_the_wait_up_to_the_cap(
    app: Any, alice: Person, database: Any, clock: Clock
):
    web = browser(app)
    for _ in range(3):
        web.login(alice.email, WRONG)
    waits = []
    for _ in range(11):
        refused = web.login(alice.email, WRONG)
        assert refused.status_code == 429
        wait = int(refused.headers["Retry-After"])
        waits.append(wait)
        clock.now += wait
        assert web.login(alice.email, WRONG).status_code == 400  # admitted, checked, wrong
    assert waits == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert "try again in 5 minutes." in web.text(web.login(alice.email, alice.password))


def test_hammering_during_the_wait_neither_checks_passwords_nor_extends_it(
    app: Any, alice: Person, database: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch
):
    web = browser(app)
    for _ in range(6):  # 3 free, then waits of 1, 2, 4 s: the next wait is 8 s
        clock.now += 10
        web.login(alice.email, WRONG)
    derivations = spy_on_hashing(monkeypatch)
    before = backoff_row(database, alice.email)

    seen = []
    for _ in range(20):
        seen.append(int(web.login(alice.email, WRONG).headers["Retry-After"]))
        clock.now += 0.25

    assert derivations == []
    assert backoff_row(database, alice.email) == before
    assert seen[0] == 8 and seen == sorted(seen, reverse=True)
    clock.now = float(before["lastFailureAt"]["N"]) + 8
    assert web.login(alice.email, alice.password).status_code == 303


def test_unknown_addresses_wait_the_same_way(app: Any, clock: Clock):
    web = browser(app)
    for _ in range(3):
        assert web.login("nobody@x.com", WRONG).status_code == 400
    refused = web.login("nobody@x.com", WRONG)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"


def test_other_accounts_are_not_slowed(app: Any, alice: Person, bob: Person, clock: Clock):
    web = browser(app)
    for _ in range(4):
        web.login(alice.email, WRONG)
    assert browser(app).login(bob.email, bob.password).status_code == 303


# --- per client --------------------------------------------------------------------------------


@pytest.fixture
def strict_app(ddb_client: Any, table_name: str) -> Any:
    return make_app(ddb_client, table_name, LOGIN_CLIENT_MAX_FAILURES=5)


def test_one_client_spraying_many_addresses_is_stopped_others_are_not(
    strict_app: Any, clock: Clock
):
    alice = register(strict_app, "alice@x.com", "Alice")
    sprayer = browser(strict_app, "198.51.100.7")
    for number in range(5):
        assert sprayer.login(f"victim{number}@x.com", WRONG).status_code == 400

    refused = sprayer.login("victim9@x.com", WRONG)
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 900
    assert sprayer.login(alice.email, alice.password).status_code == 429
    # Someone else, elsewhere, signs in; the sprayer's next window starts afresh.
    assert browser(strict_app, "203.0.113.5").login(alice.email, alice.password).status_code == 303
    clock.now += 900
    assert sprayer.login(alice.email, alice.password).status_code == 303


def test_a_successful_sign_in_gives_the_clients_attempt_back(strict_app: Any, clock: Clock):
    alice = register(strict_app, "alice@x.com", "Alice")
    for _ in range(20):  # many people behind one address, all signing in fine
        signing_in = browser(strict_app, "198.51.100.8")
        assert signing_in.login(alice.email, alice.password).status_code == 303
    office = browser(strict_app, "198.51.100.8")
    for number in range(5):
        assert office.login(f"typo{number}@x.com", WRONG).status_code == 400
    assert office.login("typo9@x.com", WRONG).status_code == 429


@pytest.mark.parametrize(("proxies", "counted_as"), [(0, "192.0.2.10"), (1, "203.0.113.9")])
def test_x_forwarded_for_is_believed_only_behind_trusted_proxies(
    ddb_client: Any, table_name: str, database: Any, proxies: int, counted_as: str, clock: Clock
):
    app = make_app(ddb_client, table_name, TRUSTED_PROXIES=proxies)
    web = browser(app, "192.0.2.10")
    spoofed = {"X-Forwarded-For": "203.0.113.9"}
    assert web.login("someone@x.com", WRONG, headers=spoofed).status_code == 400
    window = int(START) // 900
    row = database.get(keys.login_client(counted_as, window), consistent=True)
    assert row is not None and row["failures"] == {"N": "1"}


# --- atomic claims -----------------------------------------------------------------------------


# moto's FAQ: not safe under concurrency; its conditional writes race in-process, so these
# run on DynamoDB Local only (the local backend of every `make test`).
RACES = "moto is not concurrency-safe: its conditional writes race between threads"


@pytest.mark.local_only(reason=RACES)
def test_concurrent_claims_admit_exactly_the_free_attempts(database: Any, ddb_client: Any):
    """The claim is one conditional ADD: racing threads cannot all read "not yet limited"."""
    policy = signin_limits.Policy(free_failures=3, client_max_failures=1000)
    barrier = threading.Barrier(12)

    def attempt(number: int) -> bool:
        barrier.wait(timeout=30)
        attempt = signin_limits.Attempt("alice@x.com", client=f"10.0.0.{number}")
        refusal = signin_limits.claim_attempt(database, attempt, policy, now=START)
        return refusal is None

    with ThreadPoolExecutor(max_workers=12) as pool:
        admitted = list(pool.map(attempt, range(12)))

    assert sum(admitted) == 3
    assert backoff_row(database, "alice@x.com")["failures"] == {"N": "3"}


@pytest.mark.local_only(reason=RACES)
def test_concurrent_wrong_passwords_check_no_more_than_the_limit(
    app: Any, alice: Person, ddb_client: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch
):
    """Through the page: ten wrong passwords at once, three checked, seven told to wait."""
    derivations = spy_on_hashing(monkeypatch)
    browsers = [browser(app, f"10.1.0.{number}") for number in range(10)]
    for web in browsers:
        web.csrf_from("/login")  # every form is open before anyone sends
    barrier = threading.Barrier(len(browsers))

    def send(web: WebClient) -> int:
        barrier.wait(timeout=30)
        return web.post("/login", {"email": alice.email, "password": WRONG}).status_code

    with ThreadPoolExecutor(max_workers=len(browsers)) as pool:
        statuses = sorted(pool.map(send, browsers))

    assert statuses == [400] * 3 + [429] * 7
    assert len(derivations) == 3


# --- device cookies ----------------------------------------------------------------------------


def test_the_owners_own_browser_is_not_kept_waiting_by_attempts_elsewhere(
    app: Any, alice: Person, clock: Clock
):
    """OWASP's device cookies: the browser alice signed in with waits on its own backoff."""
    owner = browser(app, "192.0.2.50")
    assert owner.login(alice.email, alice.password).status_code == 303
    assert owner.cookie(devices.COOKIE)
    owner.logout()
    attacker = browser(app, "198.51.100.66")
    for _ in range(8):
        clock.now += 300
        attacker.login(alice.email, WRONG)
    assert attacker.login(alice.email, alice.password).status_code == 429

    assert owner.login(alice.email, alice.password).status_code == 303
    assert attacker.login(alice.email, alice.password).status_code == 429


def test_a_known_browser_still_waits_after_its_own_failures(app: Any, alice: Person, clock: Clock):
    owner = browser(app)
    assert owner.login(alice.email, alice.password).status_code == 303
    owner.logout()
    for _ in range(3):
        assert owner.login(alice.email, WRONG).status_code == 400
    assert owner.login(alice.email, alice.password).status_code == 429
    clock.now += 1
    assert owner.login(alice.email, alice.password).status_code == 303


def test_a_device_cookie_counts_only_for_its_address_and_cannot_be_forged(
    app: Any, alice: Person, bob: Person, clock: Clock
):
    attacker = browser(app, "198.51.100.67")
    for _ in range(3):
        attacker.login(bob.email, WRONG)
    # alice's cookie does not exempt her browser on bob's address,
    alices = browser(app)
    assert alices.login(alice.email, alice.password).status_code == 303
    alices.logout()
    assert alices.login(bob.email, bob.password).status_code == 429
    # and a made-up cookie counts for nothing.
    forger = browser(app)
    forger.client.set_cookie(devices.COOKIE, "mydevice." + "0" * 64, domain="localhost")
    assert forger.login(bob.email, bob.password).status_code == 429


def test_the_device_cookie_is_http_only_and_names_no_address(app: Any, alice: Person):
    web = browser(app)
    response = web.login(alice.email, alice.password)
    cookie = set_cookies(response)[devices.COOKIE]
    assert "httponly" in cookie.attributes and cookie.attributes["samesite"] == "Lax"
    assert "alice" not in cookie.value and int(cookie.attributes["max-age"]) > 86400
