"""E-mail addresses compared after one normalisation (strip, Unicode NFC, lower case)
everywhere: registration, sign-in, invites bound to an address, acceptance, member rows and
the failed sign-in counter; v1's lower-case ASCII rows keep matching."""

from __future__ import annotations

import re
import unicodedata

from store import accounts, keys, signin_limits
from store import invites as store_invites
from tests.support.auth import mark_confirmed, put_account, register
from tests.support.helpers import PASSWORD, V1_PASSWORD_HASH, WebClient

NFC = unicodedata.normalize("NFC", "jörg@example.com")
NFD = unicodedata.normalize("NFD", "jörg@example.com")
LINK = re.compile(r'value="http[^"]*/invite/([A-Za-z0-9_\-]+)"')


def create_invite(team, email: str) -> str:
    """As the owner, through the page; returns the raw token shown."""
    response = team.owner.web.post(
        f"/w/{team.workspace_id}/invites/new", {"email": email, "role": "member"}
    )
    assert response.status_code == 200, team.owner.web.text(response)
    return LINK.search(team.owner.web.text(response)).group(1)


def test_normalise_email_folds_case_composition_and_spaces():
    assert NFC != NFD
    assert accounts.normalise_email(NFD) == NFC
    assert accounts.normalise_email(f"  {NFD.upper()} ") == NFC
    assert accounts.normalise_email("Alice@X.COM") == "alice@x.com"
    # Case folding after composition: a capital composed letter becomes a small one.
    assert accounts.normalise_email("J\u00d6RG@EXAMPLE.COM") == NFC


SPELLINGS = {
    "nfc-nfc": ("NFC", "NFC"),
    "nfc-nfd": ("NFC", "NFD"),
    "nfd-nfc": ("NFD", "NFC"),
    "nfc-upper": ("NFC", "NFC-upper"),
    "nfd-upper-nfc": ("NFD-upper", "NFC"),
}


def spelled(local: str, form: str) -> str:
    """``<local>jörg@example.com`` in one Unicode form, maybe upper case."""
    address = unicodedata.normalize(form.split("-")[0], f"{local}jörg@example.com")
    return address.upper() if form.endswith("upper") else address


def test_an_invite_to_a_non_ascii_address_is_accepted_in_every_spelling(app, database, team):
    """It answered 500: hmac.compare_digest refuses non-ASCII str (TypeError). One table:
    each case is its own address (a prefix), registered in one spelling, invited in another."""
    for case, (registered, invited) in SPELLINGS.items():
        local = case.replace("-", "")
        token = create_invite(team, spelled(local, invited))
        web = WebClient(app.test_client())
        assert web.register(spelled(local, registered), "Jörg").status_code == 303, case
        mark_confirmed(app, spelled(local, registered))  # only a confirmed address may join
        page = web.get(f"/invite/{token}")
        assert page.status_code == 200, case
        assert "different e-mail address" not in web.text(page), case
        assert "Join Acme</button>" in web.text(page), case
        response = web.post(f"/invite/{token}", {})
        assert response.status_code == 303, (case, web.text(response))
        assert f"/w/{team.workspace_id}/items" in response.headers["Location"], case
        stored = spelled(local, "NFC")
        user_id = database.get(keys.email(stored), consistent=True)["userId"]["S"]
        member = database.get(keys.member(team.workspace_id, user_id), consistent=True)
        assert member["role"]["S"] == "member", case
        assert member["email"]["S"] == stored, case


def test_the_store_accepts_whatever_spelling_the_session_carries(database, team):
    invite, token, _ = store_invites.create_invite(
        database,
        team.workspace_id,
        email=NFD.upper(),
        role="member",
        invited_by=team.owner.user_id,
        lifetime_seconds=600,
    )
    assert invite.email == NFC
    found = store_invites.accept(database, token, user_id="u-jorg", email=f" {NFD} ")
    assert found.invite.invite_id == invite.invite_id


def test_registration_and_sign_in_see_one_address_in_every_spelling(app, database):
    person = register(app, NFC, "Jörg")
    assert database.get(keys.email(NFC), consistent=True)["userId"]["S"] == person.user_id
    web = WebClient(app.test_client())
    taken = web.register(NFD.upper(), "Another Jörg")
    assert taken.status_code == 400
    assert "cannot be used for a new account" in web.text(taken)
    for spelling in (NFD, NFC.upper(), f"  {NFD} "):
        assert WebClient(app.test_client()).login(spelling, PASSWORD).status_code == 303


def test_failed_sign_ins_count_one_address_in_every_spelling(database):
    policy = signin_limits.Policy(free_failures=5)
    for client, spelling in enumerate((NFC, NFD, NFD.upper())):
        attempt = signin_limits.Attempt(spelling, client=f"10.0.0.{client}")
        assert signin_limits.claim_attempt(database, attempt, policy) is None
    row = database.get(keys.login_backoff(NFC), consistent=True)
    assert row["failures"]["N"] == "3"


def test_a_v1_account_in_lower_case_ascii_signs_in_as_before(app, database):
    put_account(database, "victor@example.com", V1_PASSWORD_HASH)
    for spelling in ("victor@example.com", "Victor@Example.COM ", " VICTOR@EXAMPLE.COM"):
        assert WebClient(app.test_client()).login(spelling, PASSWORD).status_code == 303
