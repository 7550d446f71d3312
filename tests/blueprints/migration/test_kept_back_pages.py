"""Promise 10 as people and operators see it: everyone gets in, owners and `migration status`
see the kept-back rows with key and reason."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from store.migration.flag import read_flag
from tests.support import kept_back
from tests.support.helpers import wait_for
from tests.support.migration import migrate

# A key that must be shown as text, never as markup.
MARKUP_ID = '<img src=x onerror="alert(1)">'


@pytest.fixture
def table_name(ddb_client: Any) -> Iterator[str]:
    yield from kept_back.v1_table(ddb_client)


@pytest.fixture
def accounts(database, seed) -> list[Any]:
    seeded = seed(items=10, settings=2, members=3)
    rows = [row for _, row in kept_back.UNSTORABLE]
    rows.append(kept_back.item(MARKUP_ID, createdAt={"N": "7"}))
    kept_back.write(database, rows)
    kept_back.db_init(database)
    return seeded


def test_people_land_past_the_preparing_page_and_owners_see_the_kept_back_rows(
    web, other_web, accounts, database
):
    owner = next(a for a in accounts if a.role == "owner")
    member = next(a for a in accounts if a.role == "member")
    web.login(owner.email)

    first = web.get("/")
    # A small table is copied inside the first request (a slice); else the preparing page.
    if first.status_code == 303:
        assert "/preparing" in first.headers["Location"]
        wait_for(lambda: web.get("/preparing/progress?next=/").json["done"])
    else:
        assert first.headers["Location"].startswith("/w/")
    for person in (web, other_web):
        if person is other_web:
            other_web.login(member.email)
        home = person.get("/")
        # Straight to their workspace, not to the preparing page.
        assert home.headers["Location"].startswith("/w/"), home.headers.get("Location")
        assert person.get(home.headers["Location"]).status_code == 200

    page = web.get("/migration")

    assert page.status_code == 200
    html = web.text(page)
    assert read_flag(database).kept_back == 6
    assert "Kept back" in html and ">6<" in html
    assert "ITEM#number-created / ITEM" in html and "createdAt is a number; v2 needs text" in html
    assert "MEMBERS / u-gsi" in html and "member has a GSI1PK attribute" in html
    assert "cut short; the whole key is 1029 bytes" in html
    # The key is shown as text.
    assert MARKUP_ID not in html
    assert "ITEM#&lt;img src=x onerror=&#34;alert(1)&#34;&gt; / ITEM" in html
    assert other_web.get("/migration").status_code == 403


def test_status_lists_kept_back_rows_with_key_and_reason_and_exits_1(runner, accounts, database):
    before = runner.invoke(args=["migration", "status"])
    flag = migrate(database)
    assert flag is not None

    after = runner.invoke(args=["migration", "status"])

    # Before the copy nothing is kept back yet; status exits as it always has.
    assert before.exit_code == 0, before.output
    assert "kept back: none" in before.output
    assert after.exit_code == 1, after.output
    assert "kept back=6" in after.output
    assert "kept back: 6 v1 rows v2 cannot store as they are" in after.output
    assert "  item ITEM#number-created / ITEM: createdAt is a number; v2 needs text" in after.output
    assert "  setting SETTINGS / sss" in after.output
    assert "(cut short; the whole key is 1029 bytes)" in after.output
    assert f"  item ITEM#{MARKUP_ID} / ITEM: createdAt is a number" in after.output
    assert "next attempt" not in after.output, "a complete claim shows no backoff"


def test_status_shows_the_first_50_kept_back_rows_and_counts_the_rest(runner, database, seed):
    seed(items=3, settings=1, members=1)
    odd = [kept_back.item(f"n{i:03d}", createdAt={"N": str(i)}) for i in range(53)]
    kept_back.write(database, odd)
    kept_back.db_init(database)
    assert migrate(database) is not None

    result = runner.invoke(args=["migration", "status"])

    assert result.exit_code == 1
    listed = [line for line in result.output.splitlines() if line.startswith("  item ITEM#n")]
    assert len(listed) == 50
    assert "  ... and 3 more" in result.output
