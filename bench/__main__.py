"""``make bench``: the migration and the items page, timed on DynamoDB Local.

Prints one table per question; every figure is a median over repeats made in this one run,
so ratios compare like with like on whatever else the machine is doing at the time.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import statistics
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from werkzeug.security import generate_password_hash

from bench import copies, rolling
from devtools import embedded_db
from store import batch, keys, schema
from store.db import Database, build_client
from store.migration import legacy
from store.migration.acquire import try_acquire
from store.migration.claim import ClaimObserver
from store.migration.engine import Settings, run_migration
from store.migration.flag import read_flag

PASSWORD = "a long enough bench password"
WRITERS = 4


def fresh_database(client: Any) -> Database:
    name = f"bench-{uuid.uuid4().hex[:10]}"
    schema.ensure_table(client, name, poll=0.05)
    return Database(client=client, table=name)


class CallCounter:
    def __init__(self, client: Any) -> None:
        self.calls: list[str] = []
        self.lock = threading.Lock()
        client.meta.events.register("before-call.dynamodb", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        with self.lock:
            self.calls.append(model.name)

    def take(self) -> list[str]:
        with self.lock:
            taken, self.calls = self.calls, []
        return taken


def seed(database: Database, items: int) -> list[legacy.SeededAccount]:
    password_hash = generate_password_hash(PASSWORD, "pbkdf2:sha256:1000")
    rows, accounts = legacy.build_dataset(items, 5, 4, password_hash, seed=items)
    deadline = time.monotonic() + 3600
    chunks = list(batch.chunk_requests({"PutRequest": {"Item": row}} for row in rows))
    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(lambda c: batch.write_chunk(database, c, deadline=deadline), chunks))
    return accounts


def make_app(client: Any, table: str, **overrides: Any) -> Any:
    from app import create_app

    return create_app(
        {
            "MIGRATION_SYNC_SECONDS": 0,  # no late-write poller counted in the pages table
            **overrides,
            "TESTING": True,
            "APP_ENV": "development",
            "SECRET_KEY": "bench-" + "k" * 40,
            "DYNAMODB_CLIENT": client,
            "DYNAMODB_TABLE": table,
            "DYNAMODB_EMBEDDED": False,
            "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        }
    )


def signed_in_client(app: Any, email: str) -> Any:
    import re

    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 303, "bench sign-in failed"
    return client


class FlagClock:
    """When DynamoDB answered the transaction that wrote the flag (``perf_counter``)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.written_at: float | None = None
        self.flag_key = keys.migration_flag()

    def __enter__(self) -> FlagClock:
        self.client.meta.events.register(
            "before-parameter-build.dynamodb.TransactWriteItems", self._mark
        )
        self.client.meta.events.register("after-call.dynamodb.TransactWriteItems", self._stamp)
        return self

    def __exit__(self, *_: Any) -> None:
        self.client.meta.events.unregister(
            "before-parameter-build.dynamodb.TransactWriteItems", self._mark
        )
        self.client.meta.events.unregister("after-call.dynamodb.TransactWriteItems", self._stamp)

    def _mark(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        puts = (action.get("Put", {}).get("Item", {}) for action in params["TransactItems"])
        context["writes_flag"] = any(
            item.get(keys.PK) == self.flag_key[keys.PK]
            and item.get(keys.SK) == self.flag_key[keys.SK]
            for item in puts
        )

    def _stamp(self, http_response: Any, context: dict[str, Any], **_: Any) -> None:
        if context.get("writes_flag") and http_response.status_code == 200:
            self.written_at = time.perf_counter()


def migrate_via_first_request(
    client: Any, database: Database, counter: CallCounter | None = None
) -> tuple[float, float]:
    """Seconds from the first signed-in page request until DynamoDB answered the flag's
    transaction, and until the response (the page after the flag when the copy fit in the
    request's slice; the run goes on in a background thread when it does not)."""
    from blueprints.migration import runner

    app = make_app(client, database.table)
    owner = legacy.PEOPLE[0].split()[0].lower() + "@example.com"
    browser = signed_in_client(app, owner)
    if counter is not None:
        counter.take()
    with FlagClock(client) as flag_clock:
        started = time.perf_counter()
        response = browser.get("/")
        responded = time.perf_counter()
        thread = runner.state(app).thread
        if thread is not None:
            thread.join()
    assert response.status_code in (302, 303), response.status_code
    assert read_flag(database) is not None, "the migration did not finish"
    assert flag_clock.written_at is not None, "no flag transaction was seen"
    return flag_clock.written_at - started, responded - started


def timed(function: Callable[[], Any]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def migration_table(
    client: Any, sizes: list[int], repeats: dict[int, int], *, warm_up_rounds: int = 3
) -> None:
    print("\n## Migration: first signed-in request → flag, vs the floor (DynamoDB Local)\n")
    print("migration: from the first signed-in page request until DynamoDB answered the flag's")
    print("transaction. floor: the same parallel Scan and parallel BatchWriteItem of the same")
    print("rows into one partition, with no checks (bench/copies.py). Each run seeds two tables")
    print("alike, one for the floor and one for the migration, in alternating order, after an")
    print(f"untimed warm-up of each ({warm_up_rounds} rounds).\n")
    warm_up(client, warm_up_rounds)
    print("| v1 items | runs | migration (median) | floor (median) | ratio |")
    print("|---:|---:|---:|---:|---:|")
    for size in sizes:
        migrations, floors = [], []
        for run in range(repeats[size]):
            first, second = fresh_database(client), fresh_database(client)
            seed(first, size)
            seed(second, size)
            floor_db, migration_db = (first, second) if run % 2 else (second, first)
            if run % 2:
                floors.append(timed(lambda d=floor_db: copies.copy_all(d)))
            migrations.append(migrate_via_first_request(client, migration_db)[0])
            if not run % 2:
                floors.append(timed(lambda d=floor_db: copies.copy_all(d)))
            for database in (first, second):
                client.delete_table(TableName=database.table)
        m, f = statistics.median(migrations), statistics.median(floors)
        print(
            f"| {size:,} | {repeats[size]} | {m * 1000:,.0f} ms | {f * 1000:,.0f} ms "
            f"| {m / f:.2f}x |"
        )


def warm_up(client: Any, rounds: int = 3) -> None:
    """Untimed floors and migrations first: DynamoDB Local (a JVM) runs its first requests
    slowly until its code is compiled, which would otherwise weigh on whichever ran first
    (after one round, the next two timed floors still took 763 and 852 ms against 540-610)."""
    for _ in range(rounds):
        database = fresh_database(client)
        seed(database, 1000)
        copies.copy_all(database)
        migrate_via_first_request(client, database)
        client.delete_table(TableName=database.table)


def alternatives_table(client: Any, size: int, repeats: int) -> None:
    print(f"\n## Ways to write the copy, {size:,} items, no checks (median of {repeats})\n")
    print("| write | time | vs BatchWriteItem |")
    print("|---|---:|---:|")
    times: dict[str, list[float]] = {how: [] for how in copies.HOW}
    database = fresh_database(client)
    seed(database, size)
    for _ in range(repeats):
        for how in copies.HOW:
            times[how].append(timed(lambda h=how: copies.copy_all(database, h)))
    client.delete_table(TableName=database.table)
    floor = statistics.median(times["batch"])
    for how, label in copies.HOW.items():
        median = statistics.median(times[how])
        print(f"| {label} | {median * 1000:,.0f} ms | {median / floor:.2f}x |")


def first_request_table(client: Any, size: int, repeats: int) -> None:
    print(f"\n## First signed-in request → flag at {size} items, through the app\n")
    counter = CallCounter(client)
    times, responses, calls = [], [], []
    for _ in range(repeats):
        database = fresh_database(client)
        seed(database, size)
        to_flag, to_response = migrate_via_first_request(client, database, counter)
        times.append(to_flag)
        responses.append(to_response)
        calls.append(len(counter.take()))
        client.delete_table(TableName=database.table)
    client.meta.events.unregister("before-call.dynamodb", counter._count)
    ordered = sorted(times)
    print(
        f"to the flag: median {statistics.median(times) * 1000:.0f} ms over {repeats} runs ", end=""
    )
    print(f"(fastest {ordered[0] * 1000:.0f} ms, slowest {ordered[-1] * 1000:.0f} ms); ", end="")
    response_median = statistics.median(responses) * 1000
    print(f"to the response (the page after the flag): median {response_median:.0f} ms; ", end="")
    print(f"{statistics.median(calls):.0f} DynamoDB calls in the request")


def end_to_end(client: Any, size: int) -> None:
    print(f"\n## {size:,} items end to end (one run)\n")
    database = fresh_database(client)
    started = time.perf_counter()
    seed(database, size)
    seeded = time.perf_counter() - started
    elapsed, _ = migrate_via_first_request(client, database)
    flag = read_flag(database)
    assert flag is not None and flag.items == size
    print(
        f"seeded in {seeded:.0f} s; first signed-in request → flag {elapsed:.1f} s "
        f"({size / elapsed:,.0f} items/s), {flag.items:,} items verified and flagged"
    )
    client.delete_table(TableName=database.table)


def memory_table(client: Any, sizes: list[int]) -> None:
    print("\n## Migration: peak Python memory (tracemalloc) during the copy\n")
    print("| v1 items | peak memory | migration time |")
    print("|---:|---:|---:|")
    for size in sizes:
        database = fresh_database(client)
        seed(database, size)
        run = try_acquire(database, "bench", ClaimObserver(), lease=30, segments=WRITERS)
        tracemalloc.start()
        started = time.perf_counter()
        flag = run_migration(database, run, Settings(writers=WRITERS, segments=WRITERS))
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert flag is not None and flag.items == size
        print(f"| {size:,} | {peak / 1024 / 1024:.1f} MiB | {elapsed:.1f} s |")
        client.delete_table(TableName=database.table)


def pages_table(client: Any, sizes: list[int], requests: int) -> None:
    print("\n## Signed-in pages after the migration\n")
    print("| v1 items | page | DynamoDB calls per request | median page time |")
    print("|---:|---|---:|---:|")
    medians: dict[tuple[int, str], float] = {}
    for size in sizes:
        database = fresh_database(client)
        seed(database, size)
        app = make_app(client, database.table)
        owner = legacy.PEOPLE[0].split()[0].lower() + "@example.com"
        browser = signed_in_client(app, owner)
        browser.get("/")
        from blueprints.migration import runner

        thread = runner.state(app).thread
        if thread is not None:
            thread.join()
        flag = read_flag(database)
        counter = CallCounter(client)
        for label, path in (("/", "/"), ("items", f"/w/{flag.workspace_id}/items")):
            browser.get(path)  # warm: the process reads the flag once
            counter.take()
            times = []
            for _ in range(requests):
                times.append(timed(lambda p=path, b=browser: b.get(p)))
            calls = len(counter.take()) / requests
            medians[(size, label)] = statistics.median(times)
            print(f"| {size:,} | {label} | {calls:.1f} | {medians[(size, label)] * 1000:.1f} ms |")
        client.meta.events.unregister("before-call.dynamodb", counter._count)
        client.delete_table(TableName=database.table)
    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        ratio = medians[(large, "items")] / medians[(small, "items")]
        print(f"\nitems page at {large:,} items vs {small:,} items: {ratio:.2f}x")


@contextlib.contextmanager
def local_server(*, announce: bool = True) -> Iterator[Any]:
    """A fresh DynamoDB Local in memory, and a client for it; stopped afterwards."""
    server = embedded_db.start_dynamodb_local(None)
    try:
        client = build_client(
            endpoint=server.endpoint,
            region="us-east-1",
            max_attempts=3,
            # DynamoDB Local on a busy machine can take more than the app's 5 s to answer a
            # large Scan page; a timeout here would measure the machine, not the copy.
            read_timeout=30.0,
            local_credentials=True,
            pool_size=32,
        )
        if announce:
            print(f"DynamoDB Local at {server.endpoint} (in memory); {WRITERS} parallel writers")
        yield client
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    args = parser.parse_args(argv)
    # The factory reads the environment first; the bench is a development run.
    os.environ["APP_ENV"] = "development"
    os.environ.setdefault("SECRET_KEY", "bench-" + "k" * 40)
    with local_server() as client:
        if args.quick:
            migration_table(client, [1000], {1000: 1}, warm_up_rounds=1)
            first_request_table(client, 100, repeats=3)
            alternatives_table(client, 1000, repeats=1)
            pages_table(client, [100, 1000], requests=20)
            memory_table(client, [1000])
        else:
            migration_table(client, [1000, 10_000], {1000: 9, 10_000: 3})
            first_request_table(client, 100, repeats=11)
            alternatives_table(client, 1000, repeats=3)
            pages_table(client, [100, 10_000], requests=50)
            memory_table(client, [10_000])
            end_to_end(client, 100_000)
    quiet = functools.partial(local_server, announce=False)
    rolling.rolling_table(quiet, seed, make_app, signed_in_client, quick=args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
