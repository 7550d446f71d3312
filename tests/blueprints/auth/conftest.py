"""People for the account tests: alice and bob, each registered in a browser of their own."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.auth import Person, register


@pytest.fixture
def alice(app: Any) -> Person:
    return register(app, "alice@x.com", "Alice Archer")


@pytest.fixture
def bob(app: Any) -> Person:
    return register(app, "bob@x.com", "Bob Baker")
