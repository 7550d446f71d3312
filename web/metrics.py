"""Request and migration metrics in CloudWatch's embedded metric format (``METRICS=emf``).

Each measurement is one JSON line on stdout whose ``_aws`` block tells CloudWatch Logs which
of its keys are metrics, so CloudWatch makes them without an agent or an API call: on Lambda
directly, on ECS through the ``awslogs`` driver, on EC2 through any shipper into CloudWatch
Logs. The lines are written outside the logging formatter, since EMF needs the whole log
event to be the metric object. ``METRICS=off`` (the default) writes nothing.

Metrics (namespace ``TeamApp``): ``Requests`` (Count) and ``Latency`` (Milliseconds) by
``StatusClass`` (2xx, 3xx, 4xx, 5xx); ``MigrationRuns`` (Count), ``ItemsCopied``,
``SettingsCopied``, ``MembersCopied``, ``RowsKeptBack`` (Count), ``MigrationDuration``
(Milliseconds) and ``MigrationFailures`` (Count) by ``Outcome`` (complete, paused, failed).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import IO, Any

from flask import Flask, current_app

NAMESPACE = "TeamApp"
METRICS_KEY = "metrics"

Metric = tuple[str, str, float]  # name, CloudWatch unit, value


def emf_line(
    dimensions: Mapping[str, str], metrics: list[Metric], *, timestamp_ms: int | None = None
) -> dict[str, Any]:
    """One EMF object: the dimension values and metric values as top-level keys, and the
    ``_aws`` metadata naming them (one dimension set holding every dimension given)."""
    line: dict[str, Any] = {
        "_aws": {
            "Timestamp": timestamp_ms if timestamp_ms is not None else int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [list(dimensions)],
                    "Metrics": [{"Name": name, "Unit": unit} for name, unit, _ in metrics],
                }
            ],
        },
        **dimensions,
    }
    for name, _, value in metrics:
        line[name] = value
    return line


class EmfWriter:
    """Writes EMF lines to a stream (stdout), one whole line at a time across threads."""

    def __init__(self, stream: IO[str] | None = None, clock: Callable[[], float] = time.time):
        self._stream = stream
        self._clock = clock
        self._lock = threading.Lock()

    def emit(self, dimensions: Mapping[str, str], metrics: list[Metric]) -> None:
        line = emf_line(dimensions, metrics, timestamp_ms=int(self._clock() * 1000))
        text = json.dumps(line, separators=(",", ":")) + "\n"
        stream = self._stream or sys.stdout
        with self._lock:
            stream.write(text)
            stream.flush()


def status_class(status: int) -> str:
    return f"{status // 100}xx"


def _writer() -> EmfWriter | None:
    try:
        return current_app.extensions.get(METRICS_KEY)
    except RuntimeError:  # outside an app context (a CLI run's background thread)
        return None


def record_request(status: int, duration_ms: float) -> None:
    writer = _writer()
    if writer is not None:
        writer.emit(
            {"StatusClass": status_class(status)},
            [("Requests", "Count", 1), ("Latency", "Milliseconds", duration_ms)],
        )


def record_migration(
    writer: EmfWriter | None, outcome: str, counts: Mapping[str, int], duration_ms: float
) -> None:
    """One run or slice of the migration: how it ended, what it copied and kept back."""
    if writer is None:
        return
    writer.emit(
        {"Outcome": outcome},
        [
            ("MigrationRuns", "Count", 1),
            ("ItemsCopied", "Count", counts.get("items", 0)),
            ("SettingsCopied", "Count", counts.get("settings", 0)),
            ("MembersCopied", "Count", counts.get("members", 0)),
            ("RowsKeptBack", "Count", counts.get("kept_back", 0)),
            ("MigrationDuration", "Milliseconds", duration_ms),
            ("MigrationFailures", "Count", 1 if outcome == "failed" else 0),
        ],
    )


def writer_for(app: Flask) -> EmfWriter | None:
    """The app's EMF writer, or None when metrics are off (for threads without a context)."""
    return app.extensions.get(METRICS_KEY)


def init_app(app: Flask, stream: IO[str] | None = None) -> None:
    app.extensions[METRICS_KEY] = EmfWriter(stream) if app.config.get("METRICS") == "emf" else None
