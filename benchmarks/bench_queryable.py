"""Ingestion before and after queryable events (properties, traits and context kept as
JSON columns beside each event's body, commit 6e26c52): the batch benchmark and the
pipeline-stages benchmark run on both trees, the one before checked out with ``git
worktree`` (commit ``BEFORE``), alternating before/after so that the shared machine's
drift hits both alike; the table shows the medians.

    python -m benchmarks --only queryable --write
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from benchmarks.common import ROOT, Context, Row, log

NAME = "queryable"
TITLE = "queryable events: before/after"
BEFORE = "6ebc9ad"  # the last commit before the JSON columns
_PROBE = (
    "import json; from benchmarks.common import Context, make_tmp, remove_tmp; "
    "from benchmarks import bench_batch, bench_stages; tmp = make_tmp(); "
    "ctx = Context(quick={quick}, tmp=tmp); "
    "rows = bench_batch.run(ctx) + bench_stages.run(ctx); remove_tmp(tmp); "
    "print(json.dumps({{r.metric: r.value for r in rows}}))"
)
EVENTS = "events/s (8 conns x 100/batch)"
LOAD = "DuckDB load (2,000 per commit)"


def _measure(tree: Path, quick: bool) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=f"{tree / 'src'}{os.pathsep}{tree}")
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(quick=quick)],
        cwd=tree, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if out.returncode:
        raise RuntimeError(f"the benchmark failed in {tree}:\n{out.stderr[-3000:]}")
    values: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return values


def run(ctx: Context) -> list[Row]:
    before_tree = ctx.tmp / "before"
    subprocess.run(
        ["git", "worktree", "add", "--detach", "-f", str(before_tree), BEFORE],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    try:
        for _ in range(1 if ctx.quick else 3):
            for label, tree in (("before", before_tree), ("after", ROOT)):
                runs[label].append(_measure(tree, ctx.quick))
                log(f"  · {label}: {runs[label][-1][EVENTS]:,.0f} ev/s")
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(before_tree)],
            cwd=ROOT, check=False, capture_output=True,
        )  # fmt: skip

    def median(label: str, metric: str) -> float:
        return statistics.median(r[metric] for r in runs[label])

    spread = "; ".join(
        f"{label}: " + ", ".join(f"{r[EVENTS]:,.0f}" for r in rs) for label, rs in runs.items()
    )
    ctx.note(f"batch events/s per run ({spread})")
    after, before = median("after", EVENTS), median("before", EVENTS)
    return [
        Row(TITLE, "batch events/s, after (baseline: before)", after, "ev/s", baseline=before,
            target=0.9 * before,
            note=f"median of {len(runs['after'])} alternating runs each; target: no more "
            f"than 10 % below before ({BEFORE})"),
        Row(TITLE, "DuckDB load CPU per event, after (baseline: before)", median("after", LOAD),
            "µs", baseline=median("before", LOAD), higher_is_better=False,
            note="the stages benchmark's load stage: the JSON columns' cost"),
    ]  # fmt: skip
