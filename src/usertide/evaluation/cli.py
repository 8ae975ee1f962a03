"""Entry points for ``usertide eval login FILE`` and ``usertide eval simulate-logins OUT``."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from usertide.evaluation.login_eval import LoginScorer, evaluate, format_report
from usertide.evaluation.login_sim import LoginSimConfig, simulate_sessions, write_events


def default_scorers() -> list[LoginScorer]:
    from usertide.evaluation.baseline_ocsvm import OneClassSVMBaseline  # imports scikit-learn
    from usertide.evaluation.usertide_scorer import UsertideLoginScorer

    return [UsertideLoginScorer(), OneClassSVMBaseline()]


def run_eval_login(path: Path, as_json: bool, scorers: list[LoginScorer] | None = None) -> int:
    """Evaluate the scorers (default: usertide's model and the one-class SVM baseline)."""
    if not path.is_file():
        print(f"usertide eval login: no such file: {path}", file=sys.stderr)
        return 2
    try:
        report = evaluate(path, default_scorers() if scorers is None else scorers)
    except ValueError as exc:
        print(f"usertide eval login: {exc}", file=sys.stderr)
        return 2
    if as_json:
        sys.stdout.write(report.to_json().decode() + "\n")
    else:
        print(format_report(report))
    return 0


def run_simulate_logins(out: Path, users: int, days: int, seed: int) -> int:
    """Write a simulated, labelled sign-in stream to ``out`` and summarise it."""
    """Sign-ins and, after each successful one, what its session does."""
    attempts: Counter[str] = Counter()
    successes: Counter[str] = Counter()
    after: Counter[str] = Counter()

    def counted(events: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for event in events:
            if event["event"] != "login":
                after[event["event"]] += 1
                yield event
                continue
            properties = event["properties"]
            kind = properties["attack_type"] or "legit"
            attempts[kind] += 1
            successes[kind] += bool(properties["success"])
            yield event

    started = time.perf_counter()
    try:
        config = LoginSimConfig(users=users, days=days, seed=seed)
        total = write_events(out, counted(simulate_sessions(config)))
    except ValueError as exc:
        print(f"usertide eval simulate-logins: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - started
    signins = sum(attempts.values())
    print(f"wrote {signins} sign-in attempts to {out} in {seconds:.1f} s (seed {seed})")
    for kind, count in attempts.most_common():
        print(f"  {kind:<20} {count:>8} attempts {successes[kind]:>7} successful")
    print(f"  and {total - signins} events of the sessions after successful sign-ins:")
    for name, count in after.most_common():
        print(f"    {name:<22} {count:>8}")
    return 0
