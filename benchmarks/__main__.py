"""``python -m benchmarks [--quick] [--only NAME ...] [--write | --no-write]``

Runs the benchmarks (each server under test in its own process, the load generator in
others), prints one table and, for a full run or with ``--write``, writes it to
BENCHMARKS.md with the command, the date and the machine. A partial run (``--only NAME
--write``) replaces only the rows, notes and sections of the benchmarks that ran and keeps
the others' as they were, each with the date of its own last run.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import ModuleType

from benchmarks import (
    bench_analytics,
    bench_batch,
    bench_bots,
    bench_detectors,
    bench_forest,
    bench_lag,
    bench_loadgen,
    bench_login,
    bench_memory,
    bench_parse,
    bench_predict,
    bench_queryable,
    bench_recommend,
    bench_single,
    bench_stages,
    bench_trees,
)
from benchmarks.common import ROOT, Context, Row, log, machine, make_tmp, remove_tmp

# In running order: the parse ceiling first so batch ingestion can be compared with it.
BENCHMARKS: list[ModuleType] = [
    bench_loadgen,
    bench_parse,
    bench_stages,
    bench_batch,
    bench_single,
    bench_lag,
    bench_memory,
    bench_login,
    bench_analytics,
    bench_queryable,
    bench_forest,
    bench_trees,
    bench_predict,
    bench_bots,
    bench_detectors,
    bench_recommend,
]
COLUMNS = ("benchmark", "metric", "value", "baseline", "ratio", "target", "pass/fail")


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if math.isnan(value):
        return "n/a"
    if unit in ("ev/s", "req/s", "events", "B"):
        text = f"{value:,.0f}"
    elif unit == "x":
        return f"{value:,.1f}x"
    elif unit in ("ms", "s"):
        text = f"{value:.2f}" if value < 10 else f"{value:,.1f}" if value < 100 else f"{value:,.0f}"
    elif unit == "MiB":
        text = f"{value:,.1f}"
    else:
        text = f"{value:,.3g}"
    return f"{text} {unit}".strip()


def cells(row: Row) -> tuple[str, ...]:
    ratio = row.ratio
    target = "—"
    if row.target is not None:
        target = ("≥ " if row.higher_is_better else "≤ ") + fmt(row.target, row.unit)
    passed = row.passed
    return (
        row.benchmark,
        row.metric,
        fmt(row.value, row.unit),
        fmt(row.baseline, row.unit),
        "—" if ratio is None else f"{ratio:,.2f}x" if ratio < 10 else f"{ratio:,.1f}x",
        target,
        "" if passed is None else "PASS" if passed else "FAIL",
    )


def text_table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
    right = {2, 3, 4}

    def line(r: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(COLUMNS), sep, *(line(r) for r in rows)])


def markdown_table(rows: list[tuple[str, ...]]) -> str:
    out = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join(["---"] * len(COLUMNS)) + "|"]
    out[1] = "|---|---|--:|--:|--:|---|---|"
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out)


METHOD = """\
## How it is measured

- **Servers in their own processes.** `usertide serve` runs as a subprocess on a fresh
  data directory for every benchmark (`USERTIDE_RATE_LIMIT_RPS=1e9`,
  `USERTIDE_RATE_LIMIT_BURST=1e9`, `USERTIDE_LOG_LEVEL=warning`), started and checked
  with `GET /healthz`. Its stream engine runs in its own thread as in production.
- **Load generator** (`benchmarks/loadgen.py`): every request is encoded to bytes
  before the clock starts; forked worker processes drive keep-alive HTTP/1.1
  connections (one request in flight per connection, no pipelining) with an
  `asyncio.Protocol` on uvloop that only parses the status line and `Content-Length`.
  Closed loop = send the next request when the answer arrives; open loop = requests
  scheduled at fixed times with latency measured from the *scheduled* time (no
  coordinated omission). Its ceiling is measured against a trivial server that answers
  without parsing (`load generator ceiling` rows).
- **Payloads**: the demo shop simulation (`usertide.demo.Simulation`), timestamped
  within the last day and a half; batch bodies are 100 events (~72 KB of JSON);
  single-event bodies are the simulation's `track` events. The same bodies go to
  usertide and to the baseline.
- **Textbook baseline** (`benchmarks/baseline_flask.py`): Flask, `request.get_json()`,
  write key check, then one SQLite `INSERT` + `commit()` per event (default rollback
  journal, `synchronous=FULL`), connection per request. It runs under gunicorn or
  waitress when installed, else Werkzeug's threaded server (see the notes for which),
  which does not keep connections alive, so its clients reconnect per request. It
  neither enriches nor feeds an engine: it does strictly less work than usertide.
- **Parse ceiling**: the same bodies decoded with msgspec and normalized by
  `SegmentProtocol.parse` in the benchmark process, one core, nothing stored.
- **Pipeline stages** (`benchmarks/bench_stages.py`): 100k demo-shop events (bodies of
  100) through each stage of the embedded pipeline in turn, in a fresh process, each
  stage timed alone with `process_time` (DuckDB's threads included): parse, enrich,
  encode for the log, decode from it, DuckDB load (2,000 per commit), the engine with
  the service's five processors; the service's GC settings, each stage's inputs frozen
  out of the collector. No HTTP and no threads competing: floors. Their sums
  give the most one process can take, and what an engine process alone could take if
  collectors ran in processes of their own.
- **Engine lag**: the server's `usertide_engine_lag_seconds` histogram (commit to
  processed, one observation per committed group), differenced over the run, quantiles
  interpolated within buckets (PromQL `histogram_quantile`); and `engine.lag_events`
  from `/healthz` sampled every 100 ms.
- **State memory**: in-process `Engine` with the three built-in processors, each
  configuration in a fresh subprocess; state bytes are `len(engine.codec.encode(state))`.
- **Sign-in risk** (`benchmarks/bench_login.py`): the sign-in simulator's traffic
  (`usertide.evaluation.login_sim`, labels removed, times shifted by whole days to end
  within the last day). Two fresh servers are warmed up alike with the first part of the
  stream (`/v1/batch`, so users have histories); then the next sign-ins at 500 req/s
  (open loop: the simulator's mix, then only legitimate ones) and the last ones at full
  speed go to `POST /v1/risk/login` (admin key) on one, and as Segment `track` events to
  `POST /v1/track` on the other: that baseline is plain ingestion of the same sign-ins,
  so the ratio shows what answering with a score costs. Each run is split in halves
  taken in the order risk API, baseline, baseline, risk API. The engine rows run in a
  fresh subprocess: `Engine.apply` over ~60k sign-ins normalized and enriched before the
  clock starts (then the service's GC settings, `tune_gc`: freeze, young threshold 50,000),
  against the one-class SVM baseline's score + learn over the same sign-ins. State sizes
  are msgpack bytes of each account's `login_risk` slot and of its whole state after
  that run. Detection quality is a section of its own (below the notes).
- **ratio** is "times better than the baseline" (value / baseline for throughput,
  baseline / value for latency and size): above 1 means usertide is better. The machine
  is shared and noisy; compare ratios from the same run rather than absolute numbers
  across runs.
"""


RUN_COLUMNS = ("benchmark", "last run", "command", "took", "load average at start")
ROWS_HEADER = "| " + " | ".join(COLUMNS) + " |"
RUNS_HEADER = "| " + " | ".join(RUN_COLUMNS) + " |"
SECTION = re.compile(r"^<!-- section: (\S+) -->$")


@dataclass
class Report:
    """BENCHMARKS.md in parts keyed by benchmark title (sections by benchmark name), so
    that a partial run replaces only its own parts and keeps the others'."""

    rows: dict[str, list[str]] = field(default_factory=dict)  # markdown table lines
    runs: dict[str, list[str]] = field(default_factory=dict)  # cells of the runs table
    notes: dict[str, list[str]] = field(default_factory=dict)  # heading -> notes
    sections: dict[str, str] = field(default_factory=dict)  # name -> markdown
    failed: dict[str, str] = field(default_factory=dict)  # title -> when it failed


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def read_report(text: str) -> Report:
    """Parse a BENCHMARKS.md written by this tool (this format or the earlier one, which
    had one run for everything and its notes in one list)."""
    report = Report()
    table: dict[str, list[str]] | None = None
    heading: str | None = None  # of the notes being read
    section: str | None = None
    section_lines: list[str] = []
    old_notes: list[str] = []
    old_run: list[str] | None = None  # the earlier format: [date, command, took, load]
    for line in text.splitlines():
        if section is not None:
            if line == f"<!-- /section: {section} -->":
                report.sections[section] = "\n".join(section_lines).strip("\n")
                section = None
            else:
                section_lines.append(line)
            continue
        if table is not None:
            if line.startswith("|"):
                if not line.startswith("|---"):
                    title = _cells(line)[0]
                    if table is report.runs:
                        report.runs[title] = _cells(line)[1:]
                    else:
                        report.rows.setdefault(title, []).append(line)
                continue
            table = None
        if line.startswith(ROWS_HEADER):
            table = report.rows
        elif line.startswith(RUNS_HEADER):
            table = report.runs
        elif match := SECTION.match(line):
            section, section_lines = match.group(1), []
        elif line.startswith("## "):
            heading = "" if line.startswith("## Notes from") else None
        elif line.startswith("### ") and heading is not None:
            heading = line[4:].strip()
        elif line.startswith("- ") and heading is not None:
            if heading:
                report.notes.setdefault(heading, []).append(line[2:])
            else:
                old_notes.append(line[2:])
        elif m := re.match(r"Generated by `([^`]+)` on (.+ UTC) in (\d+) s", line):
            old_run = [m.group(2), f"`{m.group(1)}`", f"{m.group(3)} s (whole run)", "—"]
        elif line.startswith("Machine: ") and old_run is not None:
            load = re.search(r"load average at start ([\d. ]+)", line)
            old_run[3] = load.group(1).strip().rstrip(".") if load else "—"
    if old_notes and old_run is not None and not report.runs:
        # The earlier format: one run for every row; notes attributed where they say whose.
        for title in report.rows:
            report.runs[title] = list(old_run)
        legacy = f"other notes from the run of {old_run[0]} ({old_run[1]})"
        for note in old_notes:
            title = note.split(" / ", 1)[0]
            report.notes.setdefault(title if title in report.rows else legacy, []).append(note)
    return report


def write_markdown(
    fresh: Report,
    ran: list[str],
    full: bool,
    command: str,
    m: dict[str, str],
) -> None:
    """Write BENCHMARKS.md: the benchmarks in ``ran`` (titles, in running order) from
    ``fresh``; the others as they were in the file, unless this was a full run."""
    path = ROOT / "BENCHMARKS.md"
    old = read_report(path.read_text()) if path.exists() else Report()
    order = [b.TITLE for b in BENCHMARKS]
    titles = list(dict.fromkeys([*order, *old.rows, *old.runs]))
    names = {b.TITLE: b.NAME for b in BENCHMARKS}
    merged = Report()
    for title in titles:
        replaced = title in ran and title not in fresh.failed
        source = fresh if replaced else old
        if not replaced and full and title not in names:
            continue  # a benchmark that no longer exists
        if title in source.rows:
            merged.rows[title] = source.rows[title]
        if title in source.runs:
            merged.runs[title] = list(source.runs[title])
        if title in fresh.failed:
            when = fresh.failed[title]
            if title in merged.runs:
                merged.runs[title][0] += f" (re-run {when} FAILED; results kept)"
            else:
                merged.runs[title] = [f"{when} FAILED", *fresh.runs[title][1:]]
        if title in source.notes:
            merged.notes[title] = source.notes[title]
        name = names.get(title)
        if name is not None and name in source.sections:
            merged.sections[name] = source.sections[name]
    # Notes not under a benchmark (from the earlier format) stay while a row of their run
    # does: their heading names the run's date.
    dates = {cells[0].split(" (")[0] for cells in merged.runs.values()}
    for heading, notes in old.notes.items():
        if heading not in titles and any(d in heading for d in dates):
            merged.notes[heading] = notes
    for name, text in old.sections.items():  # sections of benchmarks that no longer exist
        if name not in merged.sections and not full and name not in names.values():
            merged.sections[name] = text

    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine_line = "; ".join(f"{k} {v}" for k, v in m.items() if k != "load average at start")
    lines = [
        "# Benchmarks",
        "",
        "Generated by `python -m benchmarks` (`python3 dev.py bench` runs the same); "
        "`python -m benchmarks --only NAME --write` re-runs one benchmark and replaces only "
        "its rows, notes and sections, so rows may come from different runs: see *Runs* "
        f"below. Last written on {now} by `{command}`. Regenerate rather than edit.",
        "",
        f"Machine: {machine_line}.",
        "",
        ROWS_HEADER,
        "|---|---|--:|--:|--:|---|---|",
        *(line for title in merged.rows for line in merged.rows[title]),
        "",
        "Runs (the last one of each benchmark):",
        "",
        RUNS_HEADER,
        "|---|---|---|--:|---|",
        *("| " + " | ".join([title, *cells]) + " |" for title, cells in merged.runs.items()),
        "",
    ]
    if fresh.failed:
        lines += [f"**Failed in the last run ({now}):** " + ", ".join(fresh.failed), ""]
    lines += ["## Notes from the runs", ""]
    for heading, notes in merged.notes.items():
        lines += [f"### {heading}", "", *(f"- {n}" for n in notes), ""]
    for name, text in merged.sections.items():
        lines += [f"<!-- section: {name} -->", text.strip("\n"), f"<!-- /section: {name} -->", ""]
    lines += [METHOD]
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    names = [b.NAME for b in BENCHMARKS]
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (a ~30 s smoke run)")
    parser.add_argument(
        "--only",
        action="append",
        choices=names,
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(names)}",
    )
    parser.add_argument(
        "--write",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write BENCHMARKS.md (default: only for a full run); a partial run keeps the "
        "other benchmarks' results in it",
    )
    args = parser.parse_args(argv)  # fmt: skip
    selected = [b for b in BENCHMARKS if not args.only or b.NAME in args.only]
    write = args.write if args.write is not None else not (args.quick or args.only)
    command = "python -m benchmarks" + "".join(
        f" {a}" for a in (sys.argv[1:] if argv is None else argv)
    )

    m = machine()
    log(f"{command}\nmachine: " + "; ".join(f"{k} {v}" for k, v in m.items()))
    ctx = Context(quick=args.quick, tmp=make_tmp())
    rows: list[Row] = []
    failed: list[str] = []
    fresh = Report()
    started = time.perf_counter()
    try:
        for bench in selected:
            log(f"\n== {bench.TITLE} ({bench.NAME})")
            t0 = time.perf_counter()
            first_note = len(ctx.notes)
            when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
            load = machine()["load average at start"]
            got: list[Row] = []
            try:
                got = bench.run(ctx)
            except Exception:
                traceback.print_exc()
                failed.append(bench.NAME)
                fresh.failed[bench.TITLE] = when
                ctx.note(f"{bench.NAME}: FAILED (see the console output)")
            rows.extend(got)
            for row in got:
                log("  " + "  ".join(c for c in cells(row)[1:] if c))
            took_one = time.perf_counter() - t0
            log(f"  ({took_one:.1f} s)")
            fresh.rows[bench.TITLE] = markdown_table([cells(r) for r in got]).splitlines()[2:]
            fresh.runs[bench.TITLE] = [when, f"`{command}`", f"{took_one:.0f} s", load]
            fresh.notes[bench.TITLE] = ctx.notes[first_note:] + [
                f"{r.benchmark} / {r.metric}: {r.note}" for r in got if r.note
            ]
            section = ctx.cache.get("sections", {}).get(bench.NAME)
            if section and bench.NAME not in failed:
                fresh.sections[bench.NAME] = section
    finally:
        remove_tmp(ctx.tmp)
    took = time.perf_counter() - started
    table = [cells(r) for r in rows]
    row_notes = [f"{r.benchmark} / {r.metric}: {r.note}" for r in rows if r.note]
    ctx.notes += row_notes
    log("\n" + text_table(table))
    log("\n".join(["", *row_notes]))
    log(
        f"\n{len(rows)} rows in {took:.0f} s" + (f"; FAILED: {', '.join(failed)}" if failed else "")
    )
    if write:
        ran = [b.TITLE for b in selected]
        write_markdown(fresh, ran, not args.only, command, m)
        log(f"wrote {ROOT / 'BENCHMARKS.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
