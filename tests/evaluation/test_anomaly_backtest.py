"""usertide eval anomaly: a backtest of the abnormal-session alert on a file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sessiontraffic import traffic
from usertide.cli import main


def write(tmp_path: Path, with_truth: bool) -> Path:
    events = traffic(humans=600, bots=8, seed=3)
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    if with_truth:
        sessions = {e["context"]["sessionId"] for e in events}
        truth = {s: "crawler" if s.startswith("bs") else "human" for s in sessions}
        path.with_suffix(".truth.json").write_text(json.dumps(truth))
    return path


def test_backtest_reports_flags_alerts_and_per_type_rates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, with_truth=True)
    assert main(["eval", "anomaly", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    protocol = report["protocol"]
    assert protocol["train_sessions"] + protocol["test_sessions"] == 608
    crawlers = report["by_type"]["crawler"]
    assert crawlers["sessions"] >= 1 and crawlers["flagged"] == crawlers["sessions"]
    # the threshold is the 99th percentile of the training sessions' final scores, and a
    # session is flagged if any of its events crosses it: on these 300 short synthetic
    # sessions some 5 % of people are (what the backtest is there to show before alerting)
    assert report["by_type"]["human"]["rate"] <= 0.1
    assert report["by_type"]["all bots"]["recall"] == 1.0
    assert report["alerts"] >= 1 and report["top_users"][0]["user"].startswith("anon:b")
    assert report["top_users"][0]["reasons"][0].startswith("session anomaly score")


def test_a_lower_threshold_flags_more(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, with_truth=False)
    assert main(["eval", "anomaly", str(path), "--json"]) == 0
    default = json.loads(capsys.readouterr().out)
    assert "by_type" not in default
    assert main(["eval", "anomaly", str(path), "--json", "--threshold", "0.3"]) == 0
    lower = json.loads(capsys.readouterr().out)
    assert lower["protocol"]["threshold"] == 0.3
    assert lower["flagged_sessions"] > default["flagged_sessions"]


def test_bad_input_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "anomaly", str(tmp_path / "missing.jsonl")]) == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "page"}\nnot json\n')
    assert main(["eval", "anomaly", str(bad)]) == 2
    assert "line" in capsys.readouterr().err
    path = write(tmp_path, with_truth=False)
    assert main(["eval", "anomaly", str(path), "--train-fraction", "1.5"]) == 2
