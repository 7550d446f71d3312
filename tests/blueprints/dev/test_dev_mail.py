"""Mail without SMTP_HOST: written to the outbox folder, listed at /dev/mail in development
only, newest first, with links clickable and everything else escaped."""

from __future__ import annotations

from typing import Any

from tests.support import mailbox
from tests.support.app import make_app
from tests.support.helpers import WebClient
from web import mail


def _send(app: Any, to: str, subject: str, body: str) -> bool:
    return mail.send(app.config, to=to, subject=subject, body=body)


def test_without_smtp_each_message_is_one_file_in_the_outbox(app: Any):
    assert _send(app, "ann@x.com", "First", "one")
    assert _send(app, "ann@x.com", "Second", "two https://example.test/a?b=1&c=2")
    found = mailbox.messages(app)
    assert [m.subject for m in found] == ["Second", "First"]  # newest first
    assert mailbox.links(found[0]) == ["https://example.test/a?b=1&c=2"]
    assert len(list(mailbox.messages(app.config["MAIL_OUTBOX"]))) == 2


def test_the_dev_mail_page_lists_and_shows_mail_with_links_clickable(app: Any, web: WebClient):
    _send(app, "ann@x.com", "Older", "nothing here")
    _send(app, "ann@x.com", "Hello <b>", 'Open https://app.test/confirm/abc <script>x</script>"')
    listing = web.get("/dev/mail")
    page = web.text(listing)
    assert listing.status_code == 200
    assert page.index("Hello &lt;b&gt;") < page.index("Older")
    message_id = mailbox.messages(app)[0].message_id
    shown = web.get(f"/dev/mail/{message_id}")
    body = web.text(shown)
    assert '<a href="https://app.test/confirm/abc">https://app.test/confirm/abc</a>' in body
    assert "<script>x</script>" not in body and "&lt;script&gt;" in body
    assert shown.headers["Referrer-Policy"] == "no-referrer"
    assert shown.headers["Cache-Control"] == "no-store"


def test_a_bad_or_unknown_message_id_is_a_404(web: WebClient):
    assert web.get("/dev/mail/..%2F..%2Fsecret_key").status_code == 404
    assert web.get("/dev/mail/00000000000000000001-deadbeef").status_code == 404


def test_dev_mail_is_a_404_outside_development(ddb_client: Any, table_name: str):
    app = make_app(ddb_client, table_name, APP_ENV="production")
    _send(app, "ann@x.com", "Secret link", "https://app.test/reset/abc")
    client = app.test_client()
    assert client.get("/dev/mail", base_url="https://localhost").status_code == 404
    message_id = mailbox.messages(app)[0].message_id
    assert client.get(f"/dev/mail/{message_id}", base_url="https://localhost").status_code == 404


def test_production_without_smtp_says_so_at_start(ddb_client: Any, table_name: str, caplog: Any):
    with caplog.at_level("WARNING"):
        make_app(ddb_client, table_name, APP_ENV="production")
    assert "SMTP_HOST is not set" in caplog.text
