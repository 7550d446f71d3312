"""METRICS=emf: every request and every migration run or slice writes one line in
CloudWatch's embedded metric format, checked here against the format's specification."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest

from tests.support.app import make_app
from tests.support.helpers import WebClient, wait_for
from web.metrics import METRICS_KEY, NAMESPACE, EmfWriter, emf_line

# CloudWatch's units (the EMF specification's MetricDefinition.Unit).
UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
    "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
    "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second",
    "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second",
    "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
}  # fmt: skip


def assert_valid_emf(line: str) -> dict[str, Any]:
    """The rules of the embedded metric format specification (root node, metadata, metric
    directives, dimension sets, metric values), as CloudWatch Logs applies them."""
    document = json.loads(line)
    assert isinstance(document, dict)
    metadata = document["_aws"]
    assert isinstance(metadata["Timestamp"], int) and metadata["Timestamp"] > 1_600_000_000_000
    directives = metadata["CloudWatchMetrics"]
    assert isinstance(directives, list) and directives
    for directive in directives:
        assert isinstance(directive["Namespace"], str) and 1 <= len(directive["Namespace"]) <= 255
        assert isinstance(directive["Dimensions"], list)
        for dimension_set in directive["Dimensions"]:
            assert isinstance(dimension_set, list) and len(dimension_set) <= 30
            for name in dimension_set:
                # Each dimension is a member of the root node holding a string value.
                assert isinstance(document[name], str) and 1 <= len(document[name]) <= 1024
        metrics = directive["Metrics"]
        assert isinstance(metrics, list) and 1 <= len(metrics) <= 100
        for metric in metrics:
            assert isinstance(metric["Name"], str) and 1 <= len(metric["Name"]) <= 1024
            assert metric.get("Unit", "None") in UNITS
            value = document[metric["Name"]]  # the metric's value is a member of the root
            values = value if isinstance(value, list) else [value]
            assert 1 <= len(values) <= 100
            assert all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    return document


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [assert_valid_emf(line) for line in stream.getvalue().splitlines()]


@pytest.fixture
def emf(app: Any) -> io.StringIO:
    stream = io.StringIO()
    app.extensions[METRICS_KEY] = EmfWriter(stream)
    return stream


def test_each_request_writes_one_valid_emf_line_by_status_class(app: Any, emf: io.StringIO):
    client = app.test_client()

    client.get("/login")
    client.get("/")  # signed out: a redirect
    client.get("/no/such/page")

    lines = _lines(emf)
    assert [line["StatusClass"] for line in lines] == ["2xx", "3xx", "4xx"]
    for line in lines:
        directive = line["_aws"]["CloudWatchMetrics"][0]
        assert directive["Namespace"] == NAMESPACE
        assert directive["Dimensions"] == [["StatusClass"]]
        assert line["Requests"] == 1 and line["Latency"] >= 0


def test_a_migration_writes_its_counts_and_duration_as_emf_and_a_log_event(
    app: Any, web: WebClient, seed: Any, emf: io.StringIO, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="blueprints.migration.runner")
    accounts = seed(items=30, settings=3, members=2)
    web.login(accounts[0].email)

    web.get("/")

    runs = wait_for(lambda: [line for line in _lines(emf) if "Outcome" in line], timeout=60)
    [run] = runs
    assert run["Outcome"] == "complete" and run["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [
        ["Outcome"]
    ]
    assert (run["ItemsCopied"], run["SettingsCopied"], run["MembersCopied"]) == (30, 3, 2)
    assert run["RowsKeptBack"] == 0 and run["MigrationFailures"] == 0
    assert run["MigrationDuration"] > 0 and run["MigrationRuns"] == 1
    [event] = [r for r in caplog.records if getattr(r, "event", None) == "migration"]
    assert (event.outcome, event.items, event.kept_back) == ("complete", 30, 0)


def test_metrics_off_writes_nothing(ddb_client: Any, table_name: str, capsys: Any):
    app = make_app(ddb_client, table_name, METRICS="off")
    app.test_client().get("/login")
    assert app.extensions[METRICS_KEY] is None
    assert "_aws" not in capsys.readouterr().out


def test_metrics_emf_writes_to_stdout(ddb_client: Any, table_name: str, capsys: Any):
    app = make_app(ddb_client, table_name, METRICS="emf")
    app.test_client().get("/login")
    [line] = [x for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert assert_valid_emf(line)["StatusClass"] == "2xx"


@pytest.mark.backend_independent
def test_a_bad_line_fails_the_spec_check():
    good = emf_line({"Outcome": "failed"}, [("MigrationFailures", "Count", 1)], timestamp_ms=0)
    good["_aws"]["Timestamp"] = 1_700_000_000_000
    assert_valid_emf(json.dumps(good))
    for broken in (
        {**good, "MigrationFailures": "1"},  # a value that is not a number
        {key: value for key, value in good.items() if key != "Outcome"},  # dimension missing
    ):
        with pytest.raises((AssertionError, KeyError)):
            assert_valid_emf(json.dumps(broken))
