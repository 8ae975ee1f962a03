import json
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from sklearn.svm import OneClassSVM  # type: ignore[import-untyped]

from usertide.evaluation.baseline_ocsvm import NEUTRAL_SCORE, OneClassSVMBaseline, UserModel
from usertide.evaluation.cli import run_eval_login, run_simulate_logins
from usertide.evaluation.login_eval import (
    ALL_ATTACKS,
    EvalReport,
    MetricRow,
    evaluate,
    format_report,
    read_logins,
)
from usertide.evaluation.login_sim import (
    ATTACK_TYPES,
    LoginSimConfig,
    simulate_sessions,
    write_events,
    write_jsonl,
)

Event = dict[str, Any]


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("eval") / "logins.jsonl"
    write_jsonl(path, LoginSimConfig(users=80, days=16, seed=3, attacks_per_type=5))
    return path


class Constant:
    name = "constant"

    def score(self, event: Event) -> float:
        return 0.5

    def learn(self, event: Event, score: float) -> None:
        pass


class Oracle:
    """Knows the answers from the file itself, by message id (the harness hides labels)."""

    def __init__(self, path: Path, sign: float = 1.0) -> None:
        self.name = "oracle" if sign > 0 else "anti-oracle"
        self.truth = {
            e["messageId"]: e["properties"]["label"] == "attack" for e in read_logins(path)
        }
        self.sign = sign

    def score(self, event: Event) -> float:
        return self.sign * float(self.truth[event["messageId"]])

    def learn(self, event: Event, score: float) -> None:
        pass


class Recorder:
    """Checks the protocol: labels hidden, time order, each event scored once then learned."""

    name = "recorder"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.last_timestamp = ""

    def score(self, event: Event) -> float:
        assert "label" not in event["properties"]
        assert "attack_type" not in event["properties"]
        assert "success" in event["properties"]
        assert "mutated" not in event["properties"]
        assert event["timestamp"] >= self.last_timestamp
        self.last_timestamp = event["timestamp"]
        self.calls.append(("score", event["messageId"]))
        event["properties"]["mutated"] = True  # must not leak to the next scorer
        return 0.0

    def learn(self, event: Event, score: float) -> None:
        self.calls.append(("learn", event["messageId"]))


def rows(report: EvalReport, scorer: int, successful: bool = True) -> dict[str, MetricRow]:
    result = report.scorers[scorer]
    return {r.attack_type: r for r in (result.successful if successful else result.all_attempts)}


def test_constant_scorer_is_useless(stream: Path) -> None:
    report = evaluate(stream, [Constant()])
    for successful in (True, False):
        table = rows(report, 0, successful)
        assert set(table) == {*ATTACK_TYPES, ALL_ATTACKS}
        for row in table.values():
            if row.attacks:
                assert row.roc_auc == 0.5
                assert row.detection_rate == 0.0
                assert row.challenge_rate == 1.0


def test_oracle_is_perfect_and_its_inverse_is_not(stream: Path) -> None:
    report = evaluate(stream, [Oracle(stream), Oracle(stream, sign=-1.0)])
    for row in rows(report, 0, successful=False).values():
        assert (row.roc_auc, row.detection_rate, row.challenge_rate) == (1.0, 1.0, 0.0)
    for row in rows(report, 1, successful=False).values():
        assert (row.roc_auc, row.detection_rate, row.challenge_rate) == (0.0, 0.0, 1.0)


def test_counts_split_successful_and_all_attempts(stream: Path) -> None:
    events = read_logins(stream)
    report = evaluate(stream, [Constant()])
    legit = [e for e in events if e["properties"]["label"] == "legit"]
    assert report.signins == len(events)
    assert report.legit == len(legit)
    assert sum(report.attacks_by_type.values()) == len(events) - len(legit)
    everything, successful = rows(report, 0, False), rows(report, 0, True)
    assert everything[ALL_ATTACKS].attacks == len(events) - len(legit)
    assert everything[ALL_ATTACKS].legit == len(legit)
    assert successful[ALL_ATTACKS].legit == sum(e["properties"]["success"] for e in legit)
    for attack_type in ATTACK_TYPES:
        assert everything[attack_type].attacks == report.attacks_by_type[attack_type]
        assert everything[attack_type].legit == len(legit)  # each type against ALL legit
        assert successful[attack_type].attacks <= everything[attack_type].attacks


def test_protocol_hides_labels_keeps_order_and_isolates_scorers(stream: Path) -> None:
    first, second = Recorder(), Recorder()
    evaluate(stream, [first, second])
    ids = [e["messageId"] for e in read_logins(stream)]
    expected = [(call, i) for i in ids for call in ("score", "learn")]
    assert first.calls == expected
    assert second.calls == expected


def test_non_finite_scores_are_refused(stream: Path) -> None:
    class Broken(Constant):
        def score(self, event: Event) -> float:
            return float("nan")

    with pytest.raises(ValueError, match="nan"):
        evaluate(stream, [Broken()])


def test_report_as_text_and_json(stream: Path) -> None:
    report = evaluate(stream, [Constant()])
    text = format_report(report)
    assert "successful sign-ins" in text
    assert "all attempts" in text
    assert "detected @ 1% FPR" in text
    assert "challenged @ 99% recall" in text
    assert "sign-ins/s" in text
    decoded = msgspec.json.decode(report.to_json(), type=EvalReport)
    assert decoded == report


def test_baseline_end_to_end(stream: Path) -> None:
    report = evaluate(stream, [OneClassSVMBaseline()])
    table = rows(report, 0)
    # Few attacks of each kind in a small stream, so only the robust effects are checked:
    # sign-ins from hosting ranges abroad with random browsers stand out.
    for kind in ("credential_stuffing", ALL_ATTACKS):
        auc = table[kind].roc_auc
        assert auc is not None
        assert auc > 0.65, kind
    assert report.scorers[0].signins_per_second > 0


def test_baseline_neutral_until_three_successes() -> None:
    baseline = OneClassSVMBaseline()

    def login(
        ip: str, ua: str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Firefox/133.0"
    ) -> Event:
        return {
            "userId": "jane",
            "context": {"ip": ip, "userAgent": ua},
            "properties": {"success": True},
        }

    home = login("73.92.12.10")
    for _ in range(2):
        assert baseline.score(home) == NEUTRAL_SCORE
        baseline.learn(home, NEUTRAL_SCORE)
    failed = {**home, "properties": {"success": False}}
    baseline.learn(failed, NEUTRAL_SCORE)  # failures teach nothing
    assert baseline.score(home) == NEUTRAL_SCORE
    baseline.learn(home, NEUTRAL_SCORE)
    usual = baseline.score(home)
    abroad = baseline.score(login("46.211.89.10", "Mozilla/5.0 (Windows NT 10.0) Chrome/131.0"))
    assert abroad > usual
    assert baseline.score({**home, "userId": "someone else"}) == NEUTRAL_SCORE


def test_baseline_decision_matches_sklearn() -> None:
    key = ((("US", "Chrome"), 20), (("US", "Mobile Safari"), 7), (("FR", "Chrome"), 2))
    model = UserModel(key, nu=0.1)
    training = model.encode([row for row, count in key for _ in range(count)])
    reference = OneClassSVM(nu=0.1, kernel="rbf", gamma="scale").fit(training)
    for row in [("US", "Chrome"), ("FR", "Mobile Safari"), ("UA", "Firefox"), (None, None)]:
        x = model.encode([row])
        assert model.decision(x[0]) == pytest.approx(
            float(reference.decision_function(x)[0]), abs=1e-9
        )
    assert np.isfinite(model.score(("UA", "Firefox")))


def test_cli_simulate_then_evaluate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "small.jsonl"
    assert run_simulate_logins(out, users=30, days=8, seed=1) == 0
    printed = capsys.readouterr().out
    assert "legit" in printed
    assert "credential_stuffing" in printed
    assert run_eval_login(out, as_json=True, scorers=[Constant()]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["scorers"][0]["name"] == "constant"
    assert run_eval_login(out, as_json=False, scorers=[Constant()]) == 0
    assert "constant" in capsys.readouterr().out
    assert run_eval_login(tmp_path / "missing.jsonl", as_json=False) == 2


class Follower(Constant):
    """Raises an alert for the sign-in before each "Email Changed" (session scoring)."""

    name = "follower"

    def __init__(self) -> None:
        self.last: dict[str, str] = {}
        self.followed: list[str] = []
        self.signed_in: set[str] = set()

    def score(self, event: Event) -> float:
        return 0.1

    def learn(self, event: Event, score: float) -> None:
        self.signed_in.add(event["messageId"])
        if event["properties"]["success"]:
            self.last[event["userId"]] = event["messageId"]

    def follow(self, event: Event) -> list[tuple[str, float]]:
        assert event["event"] != "login"
        sign_in = self.last[event["userId"]]
        assert sign_in in self.signed_in  # learned before the session's events come
        self.followed.append(event["event"])
        return [(sign_in, 0.9)] if event["event"] == "Email Changed" else []


def test_alerts_later_in_the_session_count_for_their_sign_in(tmp_path: Path) -> None:
    path = tmp_path / "sessions.jsonl"
    config = LoginSimConfig(users=80, days=16, seed=3, attacks_per_type=5)
    write_events(path, simulate_sessions(config))
    follower, plain = Follower(), Constant()
    report = evaluate(path, [follower, plain])
    assert "Email Changed" in follower.followed and "login" not in follower.followed
    result = report.scorers[0]
    assert result.with_session is not None and report.scorers[1].with_session is None
    assert result.session_alerts == follower.followed.count("Email Changed") or (
        0 < result.session_alerts <= follower.followed.count("Email Changed")
    )
    by_type = {r.attack_type: r for r in result.with_session}
    at_sign_in = {r.attack_type: r for r in result.successful}
    assert at_sign_in[ALL_ATTACKS].roc_auc == 0.5  # the sign-in scores are constant
    assert by_type[ALL_ATTACKS].roc_auc is not None and by_type[ALL_ATTACKS].roc_auc > 0.5
    # the sign-in counts are those of the sign-ins alone
    assert report.signins == len(read_logins(path))
    assert "later in their session" in format_report(report)
