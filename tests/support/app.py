"""The app as tests build it: a given DynamoDB client and table, cheap hashing."""

from __future__ import annotations

import shutil
import tempfile
import weakref
from typing import Any

from tests.support.helpers import is_moto

TEST_SECRET = "test-secret-" + "x" * 40


def make_app(ddb_client: Any, table_name: str, **overrides: Any) -> Any:
    from app import create_app

    # Each app writes its mail to a folder of its own (tests/support/mailbox.py reads it),
    # removed with the app.
    given = overrides.pop("MAIL_OUTBOX", None)
    outbox = given or tempfile.mkdtemp(prefix="teamapp-mail-")
    config = {
        "MAIL_OUTBOX": outbox,
        "TESTING": True,
        "DYNAMODB_CLIENT": ddb_client,
        "DYNAMODB_TABLE": table_name,
        "DYNAMODB_EMBEDDED": False,
        # Cheap hashing keeps the suite fast; test_passwords checks the production method.
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        # moto copies the whole table inside every transaction without a lock, so parallel
        # migration writers crash it (its FAQ: not concurrency-safe); DynamoDB Local runs
        # them in parallel.
        "MIGRATION_WRITERS": 1 if is_moto(ddb_client) else 4,
        # No background late-write sync unless a test asks for it: its thread would outlive
        # the test's table (tests of it pass MIGRATION_SYNC_SECONDS and stop it).
        "MIGRATION_SYNC_SECONDS": 0,
        **overrides,
    }
    app = create_app(config)
    if not given:
        weakref.finalize(app, shutil.rmtree, outbox, ignore_errors=True)
    return app
