"""The live-server helper itself: the real app under gunicorn, started and stopped cleanly."""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from devtools.live_server import LiveServer, LiveServerError, group_alive

pytestmark = pytest.mark.local_only("starts gunicorn against DynamoDB Local")


def _alive(pid: int) -> bool:
    """True if pid exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def test_two_workers_serve_and_sigterm_leaves_nothing_behind(local_endpoint: str) -> None:
    server = LiveServer(local_endpoint, workers=2, extra_env={"LIVE_SERVER_PROBE": "yes"})
    with server:
        with urllib.request.urlopen(server.url + "/healthz", timeout=5) as response:  # noqa: S310
            assert response.status == 200
            assert json.load(response)["status"] == "ok"

        workers = server.worker_pids()
        assert len(workers) == 2 and len(set(workers)) == 2, workers
        assert server.master_pid not in workers
        assert sorted(server.ready_worker_pids()) == workers, "start() waits for every worker"
        environ = Path(f"/proc/{workers[0]}/environ").read_bytes().split(b"\0")
        assert b"LIVE_SERVER_PROBE=yes" in environ
        assert b"APP_ENV=development" in environ

        table = server.database.client.describe_table(TableName=server.table)["Table"]
        assert table["TableStatus"] == "ACTIVE", "db init ran before the server started"
        master = server.master_pid
        assert master is not None

    assert not group_alive(master), "no process of the server's group is left"
    assert not any(_alive(pid) for pid in [master, *workers])
    with pytest.raises(ClientError):  # a table the helper named is dropped on stop
        server.database.client.describe_table(TableName=server.table)


def test_a_killed_worker_is_replaced_and_can_be_waited_for(local_endpoint: str) -> None:
    with LiveServer(local_endpoint, workers=2) as server:
        before = server.worker_pids()
        server.kill_worker(before[0], signal.SIGKILL)
        after = server.wait_for_workers(timeout=30)
        assert len(after) == 2 and before[0] not in after and before[1] in after
        with urllib.request.urlopen(server.url + "/healthz", timeout=5) as response:  # noqa: S310
            assert response.status == 200


def test_a_server_that_cannot_start_says_why_and_leaves_nothing(local_endpoint: str) -> None:
    # Production without SECRET_KEY: every worker stops at boot with a one-line message.
    server = LiveServer(
        local_endpoint,
        workers=1,
        init_table=False,
        extra_env={"APP_ENV": "production", "SECRET_KEY": None},
    )
    started = time.monotonic()
    with pytest.raises(LiveServerError) as failure:
        server.start()
    assert "SECRET_KEY is not set" in str(failure.value), "the error carries the server's log"
    assert time.monotonic() - started < 15, "a crash-looping server is noticed early"
    assert server.process is None
