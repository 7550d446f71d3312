"""``make load``: the app under gunicorn (gunicorn.conf.py) on DynamoDB Local, driven by
Locust for a bounded time, then a table of requests per second, latency percentiles and
errors per endpoint, and the CPU each process used (where the time went).

Everything listens on 127.0.0.1 and is stopped at the end. The v1 data is seeded first and
nobody has signed in, so the first users meet the migration under way.

    python -m load.run [--users 16] [--seconds 60] [--items 3000] [--members 8] [--wait 0.5,2]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from devtools import embedded_db
from devtools.live_server import BIN, ROOT, LiveServer

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (0 once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def seeded_members(output: str) -> list[str]:
    """The e-mails of the seeded accounts that are v1 members (they can see the items)."""
    return [
        line.split()[0]
        for line in output.splitlines()
        if line.startswith("  ") and "@" in line and not line.rstrip().endswith("not a member")
    ]


def run_locust(
    url: str, accounts: list[str], users: int, seconds: int, wait: str, out: Path
) -> Path:
    env = {**os.environ, "LOAD_ACCOUNTS": ",".join(accounts), "LOAD_WAIT": wait}
    command = [
        str(BIN / "locust"),
        "-f",
        str(ROOT / "load" / "locustfile.py"),
        "--headless",
        "--host",
        url,
        "--users",
        str(users),
        "--spawn-rate",
        str(max(1, users // 4)),
        "--run-time",
        f"{seconds}s",
        "--stop-timeout",
        "10",
        "--csv",
        str(out / "locust"),
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    # Locust's own summary goes to a file; the table below is the one to read.
    with (out / "locust.log").open("w") as log:
        subprocess.run(  # noqa: S603 - fixed argv, no shell
            command, env=env, stdout=log, stderr=subprocess.STDOUT, check=False,
            timeout=seconds + 120,
        )  # fmt: skip
    return out / "locust_stats.csv"


def table(stats_csv: Path) -> str:
    rows = list(csv.DictReader(stats_csv.open()))
    header = (
        f"{'endpoint':<34} {'reqs':>6} {'req/s':>6} {'p50':>6} {'p95':>6} {'p99':>6} {'errors':>6}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        name = row["Name"] if row["Name"] != "Aggregated" else "all"
        lines.append(
            f"{name:<34} {row['Request Count']:>6} {float(row['Requests/s']):>6.1f} "
            f"{row['50%']:>6} {row['95%']:>6} {row['99%']:>6} {row['Failure Count']:>6}"
        )
    lines.append("(latencies in ms)")
    return "\n".join(lines)


def _route(method: str, path: str) -> str:
    path = re.sub(r"/w/[^/]+", "/w/[ws]", path)
    path = re.sub(r"/items/[^/]+/", "/items/[id]/", path)
    return f"{method} {path}"


def server_side(log_text: str) -> str:
    """Per endpoint, from the app's JSON request lines: mean wall time, mean CPU time of the
    request's thread, and mean DynamoDB calls. Wall far above CPU means waiting."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0, 0.0])
    for line in log_text.splitlines():
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") != "request":
            continue
        total = totals[_route(record["method"], record["path"])]
        total[0] += 1
        total[1] += record["duration_ms"]
        total[2] += record.get("cpu_ms", 0.0)
        total[3] += record.get("dynamodb_calls", 0)
    header = f"{'endpoint (server side)':<34} {'reqs':>6} {'wall ms':>8} {'cpu ms':>7} {'calls':>6}"
    lines = [header, "-" * len(header)]
    for name, (count, wall, cpu, calls) in sorted(totals.items()):
        lines.append(
            f"{name:<34} {count:>6.0f} {wall / count:>8.0f} {cpu / count:>7.0f} "
            f"{calls / count:>6.1f}"
        )
    lines.append("(means per request; calls = DynamoDB calls the request made)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--wait", default="0.5,2", help="seconds between a user's actions")
    args = parser.parse_args(argv)

    out = Path(tempfile.mkdtemp(prefix="load-"))
    db = embedded_db.start_dynamodb_local(None)
    env = {"LOG_FORMAT": "json", "GUNICORN_MAX_REQUESTS": "0"}
    server = LiveServer(
        db.endpoint,
        workers=args.workers,
        threads=args.threads,
        extra_env=env,
        project_config=True,
        gunicorn_args=["--access-logfile", "/dev/null"],
    )
    try:
        server.start()
        seeded = server.run_flask(
            "legacy", "seed", "--items", str(args.items), "--members", str(args.members),
            "--seed", "1",
        )  # fmt: skip
        accounts = seeded_members(seeded.stdout)
        processes = {"DynamoDB Local (java)": [db.pid], "gunicorn workers": server.worker_pids()}
        before = {name: sum(cpu_seconds(p) for p in pids) for name, pids in processes.items()}
        started = time.monotonic()
        print(  # noqa: T201 - the tool's output
            f"==> {args.users} users for {args.seconds} s on {server.url} "
            f"({args.workers} workers x {args.threads} threads, {args.items} v1 items, "
            f"{len(accounts)} accounts), migration not yet started",
            flush=True,
        )
        stats = run_locust(server.url, accounts, args.users, args.seconds, args.wait, out)
        wall = time.monotonic() - started
        used = {
            name: sum(cpu_seconds(p) for p in pids) - before[name]
            for name, pids in processes.items()
        }
        print(table(stats))  # noqa: T201
        print("\n" + server_side(server.log_tail(50_000_000)))  # noqa: T201
        print(f"\nCPU seconds used during the {wall:.0f} s run (2 cores = {2 * wall:.0f}):")  # noqa: T201
        for name, seconds in used.items():
            print(f"  {name:<24} {seconds:6.1f}")  # noqa: T201
        flag = server.run_flask("migration", "status", check=False)
        print("\nmigration:", flag.stdout.strip().splitlines()[:1])  # noqa: T201
        return 0
    finally:
        server.stop()
        db.stop()


if __name__ == "__main__":
    sys.exit(main())
