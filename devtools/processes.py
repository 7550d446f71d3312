"""Small process and socket helpers for the local servers (devtools/embedded_db.py)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


def tail(log_file: IO[bytes], limit: int = 4000) -> str:
    try:
        log_file.flush()
        size = os.fstat(log_file.fileno()).st_size
        return os.pread(log_file.fileno(), limit, max(0, size - limit)).decode(errors="replace")
    except (OSError, ValueError):
        return "(no output captured)"


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    # flock (not lockf) so that threads of one process also exclude each other: each open()
    # is its own lock owner.
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
