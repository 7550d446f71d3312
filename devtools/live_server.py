"""The real app under gunicorn, as a subprocess, against a DynamoDB-compatible server.

For browser tests, multi-process tests and benchmarks. No pytest needed::

    from devtools import embedded_db
    from devtools.live_server import LiveServer

    db = embedded_db.start_dynamodb_local(None)          # or any endpoint you already have
    with LiveServer(db.endpoint, workers=2, extra_env={"MIGRATION_LEASE_SECONDS": "2"}) as srv:
        srv.run_flask("legacy", "seed", "--items", "50")
        urllib.request.urlopen(srv.url + "/healthz")
        srv.worker_pids()                                 # [pid, pid], every worker booted

``start()`` creates the table first with ``flask --app app db init`` (same environment, own
process), then starts ``gunicorn 'app:create_app()'`` in its own session (process group) and
returns once ``/healthz`` answers 200 and every worker has loaded the app. ``stop()`` sends
SIGTERM to the whole group, SIGKILL after a timeout, and drops the table if this object named
it. The server's output goes to ``log_path``; ``log_tail()`` reads its end.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
REGION = "us-east-1"

# Environment the app reads (PRODUCT.md's interface contract) or that could send boto3
# somewhere other than the endpoint we give: never inherited from the caller's shell.
_SCRUBBED_PREFIXES = ("AWS_", "DYNAMODB_", "FLASK_", "GUNICORN_", "SMTP_")
_SCRUBBED_NAMES = {"APP_ENV", "SECRET_KEY", "PUBLIC_URL"}

# A gunicorn config file of ours: each worker leaves a marker once it has loaded the app, so
# start() can wait for all of them, not just the first one to answer.
_GUNICORN_HOOKS = """\
import os

_READY_DIR = os.environ["LIVE_SERVER_READY_DIR"]


def post_worker_init(worker):
    with open(os.path.join(_READY_DIR, str(worker.pid)), "w"):
        pass
"""


_PROJECT_CONFIG_PRELUDE = f"""\
with open({str(ROOT / "gunicorn.conf.py")!r}) as _config:
    exec(compile(_config.read(), "gunicorn.conf.py", "exec"))
"""

_WORKER_CRASH = re.compile(r"Worker \(pid:\d+\) exited with code")
_CRASH_LOOP_LIMIT = 3


class LiveServerError(RuntimeError):
    """The server or one of its commands failed; the message carries the output."""


class LiveServer:
    """One gunicorn serving ``app:create_app()`` on a loopback port, with its own table.

    ``endpoint``: the DynamoDB-compatible URL (e.g. DynamoDB Local's). ``table``: reuse an
    existing table (it is then kept on stop); by default a fresh uniquely named one is made and
    dropped on stop. ``extra_env`` is applied last, so it can override anything (a value of
    None removes a variable). ``gunicorn_args`` are appended to the command line.
    ``project_config``: also read the project's ``gunicorn.conf.py`` (its hooks and defaults).
    """

    def __init__(
        self,
        endpoint: str,
        *,
        table: str | None = None,
        workers: int = 2,
        threads: int = 4,
        extra_env: Mapping[str, str | None] | None = None,
        gunicorn_args: Sequence[str] = (),
        startup_timeout: float = 30.0,
        graceful_timeout: int = 5,
        drop_table: bool | None = None,
        init_table: bool = True,
        project_config: bool = False,
    ) -> None:
        self.endpoint = endpoint
        self.table = table or f"live-{uuid.uuid4().hex[:12]}"
        self.workers = workers
        self.threads = threads
        self.secret_key = secrets.token_urlsafe(36)  # 48 characters
        self.gunicorn_args = list(gunicorn_args)
        self.startup_timeout = startup_timeout
        self.graceful_timeout = graceful_timeout
        self.drop_table = table is None if drop_table is None else drop_table
        self.init_table = init_table
        self.project_config = project_config
        self.port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._workdir = Path(tempfile.mkdtemp(prefix="live-server-"))
        self._ready_dir = self._workdir / "ready"
        self._ready_dir.mkdir()
        self.log_path = self._workdir / "server.log"
        self.mail_folder = self._workdir / "mail"
        self._log_file: Any = None
        self._database: Any = None
        self.env = self._build_env(extra_env or {})

    # --- what callers use --------------------------------------------------------------

    @property
    def url(self) -> str:
        if self.port is None:
            raise LiveServerError("the server has not been started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def master_pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def database(self) -> Any:
        """A ``store.db.Database`` on the server's table, for seeding and inspection."""
        if self._database is None:
            from store.db import Database, build_client

            client = build_client(endpoint=self.endpoint, region=REGION, local_credentials=True)
            self._database = Database(client=client, table=self.table)
        return self._database

    def start(self) -> LiveServer:
        if self.process is not None:
            raise LiveServerError("already started")
        try:
            if self.init_table:
                self.run_flask("db", "init")
            self._start_gunicorn()
        except BaseException:
            self.stop()
            raise
        return self

    def run_flask(
        self, *args: str, check: bool = True, timeout: float = 120.0, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``flask --app app <args>`` with the server's environment; text output captured."""
        command = [str(BIN / "flask"), "--app", "app", *args]
        result = subprocess.run(
            command,
            cwd=ROOT,
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise LiveServerError(
                f"`flask --app app {' '.join(args)}` exited with {result.returncode}\n"
                f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
            )
        return result

    def worker_pids(self) -> list[int]:
        """The pids of the gunicorn workers alive now (children of the master), sorted."""
        if self.process is None or self.process.poll() is not None:
            return []
        return sorted(_children_of(self.process.pid))

    def ready_worker_pids(self) -> list[int]:
        """Live workers that have loaded the app (a respawned worker joins once booted)."""
        booted = {int(p.name) for p in self._ready_dir.iterdir() if p.name.isdigit()}
        return [pid for pid in self.worker_pids() if pid in booted]

    def wait_for_workers(self, count: int | None = None, timeout: float = 30.0) -> list[int]:
        """Wait until ``count`` (default: all) workers have loaded the app; their pids."""
        wanted = self.workers if count is None else count
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            ready = self.ready_worker_pids()
            if len(ready) >= wanted:
                return ready
            if time.monotonic() > deadline:
                raise LiveServerError(
                    f"only {len(ready)} of {wanted} workers booted in {timeout}s\n"
                    f"--- server log tail ---\n{self.log_tail()}"
                )
            time.sleep(0.02)

    def kill_worker(self, pid: int, sig: int = signal.SIGKILL, timeout: float = 10.0) -> None:
        """Send ``sig`` to one worker and wait until it is gone (gunicorn then respawns it;
        ``wait_for_workers()`` waits for the replacement)."""
        if pid not in self.worker_pids():
            raise LiveServerError(f"{pid} is not a worker of this server")
        os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while pid in self.worker_pids():
            if time.monotonic() > deadline:
                raise LiveServerError(f"worker {pid} still alive {timeout}s after signal {sig}")
            time.sleep(0.01)

    def signal_all(self, sig: int) -> None:
        """Send ``sig`` to the master and every worker at once (the server's process group):
        SIGSTOP pauses the whole server, SIGCONT resumes it."""
        if self.process is None or self.process.poll() is not None:
            raise LiveServerError("the server is not running")
        os.killpg(self.process.pid, sig)

    def kill(self, timeout: float = 10.0) -> None:
        """SIGKILL the master and every worker at once, as a crash would, and wait until they
        are gone. The table stays; ``stop()`` (at teardown) only cleans up."""
        if self.process is None:
            raise LiveServerError("the server is not running")
        pgid = self.process.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        self.process.wait(timeout)
        deadline = time.monotonic() + timeout
        while group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.02)

    def log_tail(self, limit: int = 6000) -> str:
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                handle.seek(max(0, size - limit))
                return handle.read().decode(errors="replace")
        except OSError:
            return "(no server output)"

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL what is left after ``timeout``; drop the table."""
        process, self.process = self.process, None
        if process is not None:
            _terminate_group(process, timeout)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self.drop_table:
            self.drop_table = False
            with contextlib.suppress(Exception):
                self.database.client.delete_table(TableName=self.table)
        if self._database is not None:
            with contextlib.suppress(Exception):
                self._database.client.close()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> LiveServer:
        if self.process is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"{self.url}" if self.port else "not started"
        return f"<LiveServer {where} table={self.table} workers={self.workers}>"

    # --- internals ---------------------------------------------------------------------

    def _build_env(self, extra: Mapping[str, str | None]) -> dict[str, str]:
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(_SCRUBBED_PREFIXES) and name not in _SCRUBBED_NAMES
        }
        env.update(
            {
                "APP_ENV": "development",
                "SECRET_KEY": self.secret_key,
                "DYNAMODB_ENDPOINT": self.endpoint,
                "DYNAMODB_TABLE": self.table,
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_REGION": REGION,
                "PYTHONUNBUFFERED": "1",
                "LIVE_SERVER_READY_DIR": str(self._ready_dir),
                # Each server's mail in its own folder (listed at /dev/mail), not instance/.
                "MAIL_OUTBOX": str(self.mail_folder),
            }
        )
        for name, value in extra.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = str(value)
        return env

    def _start_gunicorn(self) -> None:
        hooks = self._workdir / "gunicorn_hooks.py"
        # With project_config, the project's gunicorn.conf.py is read first (its settings and
        # hooks), then the ready marker is added; the command line below still wins.
        prelude = _PROJECT_CONFIG_PRELUDE if self.project_config else ""
        hooks.write_text(prelude + _GUNICORN_HOOKS)
        self._log_file = self.log_path.open("ab")
        for attempt in range(3):
            self.port = _free_port()
            command = [
                str(BIN / "gunicorn"),
                "app:create_app()",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.workers),
                "--threads",
                str(self.threads),
                "--config",
                str(hooks),
                "--graceful-timeout",
                str(int(self.graceful_timeout)),
                "--access-logfile",
                "-",
                "--error-logfile",
                "-",
                # gunicorn 27 otherwise opens ~/.gunicorn/gunicorn.ctl, one path shared by
                # every server on the machine: parallel servers would fight over it.
                "--no-control-socket",
                *self.gunicorn_args,
            ]
            self.process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                command,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() ends all of it
            )
            try:
                self._wait_healthy()
                self.wait_for_workers(timeout=self.startup_timeout)
                return
            except LiveServerError:
                exited = self.process.poll() is not None
                in_use = "in use" in self.log_tail()
                _terminate_group(self.process, 5.0)
                self.process = None
                if exited and in_use and attempt < 2:
                    continue  # someone took the port between our check and gunicorn's bind
                raise

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            self._check_alive()
            self._check_not_crash_looping()
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return
                    last = f"HTTP {response.status}"
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}: {exc.read()[:200]!r}"
            except (OSError, urllib.error.URLError) as exc:
                last = str(exc)
            time.sleep(0.05)
        raise LiveServerError(
            f"gunicorn on {self.url} did not answer /healthz with 200 within "
            f"{self.startup_timeout}s (last: {last})\n--- server log tail ---\n{self.log_tail()}"
        )

    def _check_not_crash_looping(self) -> None:
        # A worker that exits at boot with a plain exit code (e.g. the app's SystemExit on bad
        # configuration) is respawned forever by gunicorn; don't wait out the whole timeout.
        crashes = len(_WORKER_CRASH.findall(self.log_tail(20_000)))
        if crashes >= _CRASH_LOOP_LIMIT:
            raise LiveServerError(
                f"gunicorn workers keep dying at boot ({crashes} exits)\n"
                f"--- server log tail ---\n{self.log_tail()}"
            )

    def _check_alive(self) -> None:
        if self.process is None:
            raise LiveServerError("the server is not running")
        code = self.process.poll()
        if code is not None:
            raise LiveServerError(
                f"gunicorn exited with code {code}\n--- server log tail ---\n{self.log_tail()}"
            )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children_of(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces or parentheses, so split after it.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == pid and fields[0] != "Z":
            children.append(int(entry.name))
    return children


def group_alive(pgid: int) -> bool:
    """True while any process of the group exists (zombies included)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _terminate_group(process: subprocess.Popen[bytes], timeout: float) -> None:
    pgid = process.pid  # start_new_session: the master leads its own group
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
        os.killpg(pgid, signal.SIGCONT)  # a paused (SIGSTOP) server could not act on SIGTERM
    deadline = time.monotonic() + timeout
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(max(0.0, deadline - time.monotonic()))
    # Workers the master did not reap (it was killed, or they hung) are reparented; wait for
    # the group to empty before resorting to SIGKILL.
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.02)
    if group_alive(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(5.0)
