import json
import os
from pathlib import Path

import numpy as np
import pytest

from usertide.cli import main
from usertide.evaluation.conversion_eval import (
    ENCODINGS,
    _unweighted,
    calendar_one_hot,
    evaluate,
    reliability,
    roc_auc_interval,
    select,
)
from usertide.evaluation.conversion_features import (
    CATEGORICAL,
    DAY_KEYS,
    FEATURE_NAMES,
    HOUR_KEYS,
    CategoryCodes,
    ClickHistory,
    Clicks,
    context_features,
    model_features,
    read_clicks,
    split_by_time,
)

HEADER = "ip,app,device,os,channel,click_time,attributed_time,is_attributed"
HISTORY = FEATURE_NAMES[len(CATEGORICAL) + 1 :]  # the columns of ClickHistory.advance
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


def column(name: str) -> int:
    return HISTORY.index(name)


def test_history_features_count_only_earlier_clicks(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(
        f"{HEADER}\n"
        "7,1,1,1,5,2017-11-07 10:00:00,,0\n"
        "7,1,1,1,5,2017-11-07 10:00:30,,0\n"
        "7,2,1,1,6,2017-11-07 10:01:00,,1\n"
    )
    history = ClickHistory().advance(read_clicks(path))
    np.testing.assert_array_equal(history[:, column("clicks_24h_by_ip")], [0, 1, 2])
    np.testing.assert_array_equal(history[:, column("clicks_24h_by_ip_app")], [0, 1, 0])
    since = history[:, column("seconds_since_previous_ip_app_device_os")]
    assert np.isnan(since[0]) and since[1] == 30.0 and np.isnan(since[2])
    np.testing.assert_array_equal(history[:, column("seconds_since_previous_ip")][1:], [30, 30])
    np.testing.assert_array_equal(history[:, column("distinct_apps_by_ip")], [0, 1, 1])
    np.testing.assert_array_equal(history[:, column("distinct_channels_by_ip")], [0, 1, 1])


def test_windows_forget_clicks_a_window_old(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(
        f"{HEADER}\n"
        "7,1,1,1,5,2017-11-07 10:00:00,,0\n"
        "7,1,1,1,5,2017-11-07 10:59:59,,0\n"
        "7,1,1,1,5,2017-11-07 11:59:59,,0\n"  # exactly an hour after the second
        "7,1,1,1,5,2017-11-08 10:00:00,,0\n"  # exactly a day after the first
    )
    history = ClickHistory().advance(read_clicks(path))
    np.testing.assert_array_equal(history[:, column("clicks_1h_by_ip")], [0, 1, 0, 0])
    np.testing.assert_array_equal(history[:, column("clicks_24h_by_ip")], [0, 1, 2, 2])


def test_windowed_counts_match_a_brute_force_count(synthetic: Clicks) -> None:
    clicks = synthetic.take(slice(0, 600))
    history = ClickHistory()
    first, second = clicks.take(slice(0, 250)), clicks.take(slice(250, None))
    features = np.vstack((history.advance(first), history.advance(second)))
    for seconds, keys, label in ((86_400, DAY_KEYS, "24h"), (3_600, HOUR_KEYS, "1h")):
        for key in keys:
            ids = np.column_stack([clicks.column(name) for name in key])
            expected = [
                int(((ids[:i] == ids[i]).all(axis=1) & (clicks.time[:i] > t - seconds)).sum())
                for i, t in enumerate(clicks.time.tolist())
            ]
            got = features[:, column(f"clicks_{label}_by_" + "_".join(key))]
            np.testing.assert_array_equal(got, expected, err_msg=str(key))


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
    assert model.roc_auc_low <= model.roc_auc <= model.roc_auc_high
    assert sum(b.clicks for b in model.reliability) == len(test)
    assert sorted(c.encoding for c in report.candidates if c.chosen) == sorted(ENCODINGS)
    assert report.validation_folds == 3
    assert report.averaged_validation_roc_auc is not None
    assert 0.85 < report.averaged_validation_roc_auc <= 1.0


def test_choices_do_not_depend_on_the_test_labels(synthetic: Clicks) -> None:
    train, test = split_by_time(synthetic, 0.7)
    shuffled = np.random.default_rng(0).permutation(test.label)
    relabelled = Clicks(**{**test.__dict__, "label": shuffled})
    honest = evaluate(train, test, "train", "test")
    other = evaluate(train, relabelled, "train", "test")
    assert honest.candidates == other.candidates
    assert honest.averaged_validation_roc_auc == other.averaged_validation_roc_auc


def test_without_validation_folds_the_defaults_are_unweighted(synthetic: Clicks) -> None:
    train = synthetic.take(slice(0, 400))
    label = np.zeros(len(train), dtype=np.int64)
    label[[10, 20]] = 1  # conversions only before the first validation slice
    train = Clicks(**{**train.__dict__, "label": label})
    candidates, folds, averaged = select(train, context_features(train, ClickHistory()))
    assert folds == 0 and averaged is None
    chosen = [(c.encoding, c.class_weight, c.rounds) for c in candidates if c.chosen]
    assert chosen == [("categorical", "none", 100), ("ordinal", "none", 100)]
    assert all(c.validation_roc_auc is None for c in candidates)


def test_balanced_odds_are_corrected_back_to_the_base_rate() -> None:
    labels = np.asarray([1] + [0] * 9)
    corrected = _unweighted(np.asarray([0.5]), "balanced", labels)
    np.testing.assert_allclose(corrected, [0.1])  # even odds under balancing = the base rate
    assert _unweighted(np.asarray([0.3]), "none", labels)[0] == 0.3


def test_roc_auc_interval_is_seeded_and_brackets_the_auc() -> None:
    rng = np.random.default_rng(4)
    labels = (rng.random(3_000) < 0.02).astype(np.int64)
    predicted = np.round(rng.random(3_000) * 0.6 + labels * 0.4, 2)  # ties included
    low, high = roc_auc_interval(labels, predicted, rounds=500)
    auc = float(np.mean(predicted[labels == 1][:, None] > predicted[labels == 0][None, :]))
    auc += 0.5 * float(np.mean(predicted[labels == 1][:, None] == predicted[labels == 0][None, :]))
    assert low < auc < high and high - low < 0.2
    assert roc_auc_interval(labels, predicted, rounds=500) == (low, high)
    assert roc_auc_interval(np.asarray([0, 0, 1, 1]), np.asarray([0.1, 0.2, 0.8, 0.9])) == (
        1.0,
        1.0,
    )


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
    assert {"roc_auc", "roc_auc_low", "roc_auc_high", "pr_auc", "log_loss", "brier", "ece"} <= set(
        report["models"][0]
    )
    assert "time-ordered" in report["protocol"] and len(report["candidates"]) == 4
    assert 0.0 <= report["averaged_validation_roc_auc"] <= 1.0
    assert len(report["models"][0]["reliability"]) == 10


def test_cli_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "conversion", "--train", str(tmp_path / "none.csv")]) == 2
    assert main(["eval", "conversion", "--split-by-time", "0.7"]) == 2
    assert "--split-by-time" in capsys.readouterr().err


@pytest.mark.skipif(not SHARED.is_file(), reason="the shared TalkingData sample is missing")
def test_shared_talkingdata_split_by_time(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "conversion", "--split-by-time", "0.7", str(SHARED), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    model, baseline = report["models"]
    # The issue asks for 0.97. This split has 44 test conversions: the model scores about
    # 0.96, bootstrap 95 % interval about 0.91-0.99, so 0.97 is inside the noise but not
    # reached; the guard is against regressions, not a claim of the target. On the folds
    # inside the training clicks the averaged pair validates at about 0.97.
    assert report["test_conversions"] == 44
    assert report["averaged_validation_roc_auc"] > 0.96
    assert model["roc_auc"] >= 0.95
    assert model["roc_auc_low"] < model["roc_auc"] < model["roc_auc_high"]
    assert baseline["roc_auc"] < 0.6
