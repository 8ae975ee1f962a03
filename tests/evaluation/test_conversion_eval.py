import json
import os
from pathlib import Path

import numpy as np
import pytest

from usertide.cli import main
from usertide.evaluation.conversion_eval import calendar_one_hot, evaluate, reliability
from usertide.evaluation.conversion_features import (
    CategoryCodes,
    ClickHistory,
    Clicks,
    model_features,
    read_clicks,
    split_by_time,
)

HEADER = "ip,app,device,os,channel,click_time,attributed_time,is_attributed"
SHARED = (
    Path(os.environ.get("USERTIDE_SHARED_DATA", "/work/shared/data"))
    / "talkingdata"
    / "train_sample_first70.csv"
)


def write_clicks(path: Path, n: int, seed: int, start: int = 1_510_000_000) -> Path:
    """Random clicks over three days: apps 1 and 2 convert half the time, others hardly."""
    rng = np.random.default_rng(seed)
    times = start + np.sort(rng.integers(0, 3 * 86_400, n))
    app = rng.integers(1, 12, n)
    label = rng.random(n) < np.where(app <= 2, 0.5, 0.002)
    lines = [HEADER]
    for i in range(n):
        stamp = np.datetime64(int(times[i]), "s").astype(str).replace("T", " ")
        lines.append(
            f"{rng.integers(1, 300)},{app[i]},{rng.integers(1, 4)},{rng.integers(1, 20)},"
            f"{rng.integers(1, 30)},{stamp},,{int(label[i])}"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Clicks:
    return read_clicks(write_clicks(tmp_path_factory.mktemp("conv") / "clicks.csv", 3_000, 1))


def test_appending_future_clicks_leaves_earlier_features_unchanged(synthetic: Clicks) -> None:
    past, _ = split_by_time(synthetic, 0.5)
    codes = CategoryCodes(past)
    alone = model_features(past, codes, ClickHistory())
    with_future = model_features(synthetic, codes, ClickHistory())
    np.testing.assert_array_equal(alone, with_future[: len(past)])


def test_history_features_count_only_earlier_clicks(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(
        f"{HEADER}\n"
        "7,1,1,1,5,2017-11-07 10:00:00,,0\n"
        "7,1,1,1,5,2017-11-07 10:00:30,,0\n"
        "7,2,1,1,5,2017-11-07 10:01:00,,1\n"
    )
    clicks = read_clicks(path)
    history = ClickHistory().advance(clicks)
    np.testing.assert_array_equal(history[:, 0], [0, 1, 2])  # clicks by ip so far
    np.testing.assert_array_equal(history[:, 1], [0, 1, 0])  # by ip + app
    assert np.isnan(history[0, -2]) and history[1, -2] == 30.0 and np.isnan(history[2, -2])
    np.testing.assert_array_equal(history[:, -1], [0, 1, 1])  # distinct apps by ip before


def test_test_counts_continue_from_training(synthetic: Clicks) -> None:
    train, test = split_by_time(synthetic, 0.5)
    history = ClickHistory()
    history.advance(train)
    continued = history.advance(test)
    fresh = ClickHistory().advance(test)
    assert (continued[:, 0] >= fresh[:, 0]).all() and continued[:, 0].sum() > fresh[:, 0].sum()


def test_unseen_and_rare_categories_share_the_other_code(synthetic: Clicks) -> None:
    codes = CategoryCodes(synthetic, min_count=5)
    unseen = synthetic.take(slice(0, 1))
    unseen = Clicks(**{**unseen.__dict__, "app": np.asarray([999], dtype=np.int64)})
    assert codes.encode(unseen)[0, 0] == codes.other("app")
    assert 999 not in codes.codes["app"] and codes.other("app") == len(codes.codes["app"])


def test_label_on_app_is_learned_and_calendar_baseline_is_not(synthetic: Clicks) -> None:
    train, test = split_by_time(synthetic, 0.7)
    report = evaluate(train, test, "train", "test")
    model, baseline = report.models
    assert model.roc_auc > 0.85
    assert 0.35 < baseline.roc_auc < 0.65
    assert sum(b.clicks for b in model.reliability) == len(test)
    assert report.class_weight in ("none", "balanced")


def test_missing_column_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("ip,app,device,os,click_time\n1,2,3,4,2017-11-07 10:00:00\n")
    with pytest.raises(ValueError, match=r"missing: channel, is_attributed"):
        read_clicks(path)


def test_reliability_and_one_hot(synthetic: Clicks) -> None:
    bins = reliability(np.asarray([0, 1, 1]), np.asarray([0.05, 0.95, 1.0]))
    assert [b.clicks for b in bins][::9] == [1, 2] and bins[9].observed_rate == 1.0
    assert (calendar_one_hot(synthetic).sum(axis=1) == 2).all()


def test_cli_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train = write_clicks(tmp_path / "train.csv", 1_500, 2)
    test = write_clicks(tmp_path / "test.csv", 800, 3, start=1_510_300_000)
    assert main(["eval", "conversion", "--train", str(train), "--test", str(test), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [m["name"] for m in report["models"]][1].startswith("baseline")
    assert {"roc_auc", "pr_auc", "log_loss", "brier", "ece"} <= set(report["models"][0])
    assert len(report["models"][0]["reliability"]) == 10


def test_cli_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "conversion", "--train", str(tmp_path / "none.csv")]) == 2
    assert main(["eval", "conversion", "--split-by-time", "0.7"]) == 2
    assert "--split-by-time" in capsys.readouterr().err


@pytest.mark.skipif(not SHARED.is_file(), reason="the shared TalkingData sample is missing")
def test_shared_talkingdata_split_by_time(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "conversion", "--split-by-time", "0.7", str(SHARED), "--json"]) == 0
    model, baseline = json.loads(capsys.readouterr().out)["models"]
    # The issue asks for 0.97; this 44-conversion test split reaches about 0.95 (see
    # the report), so this guards against regressions rather than claiming the target.
    assert model["roc_auc"] >= 0.93
    assert baseline["roc_auc"] < 0.6
