"""``python -m benchmarks [--quick] [--only NAME ...] [--write | --no-write]``

Runs the benchmarks (each server under test in its own process, the load generator in
others), prints one table and, for a full run, writes it to BENCHMARKS.md with the
command, the date and the machine.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import traceback
from datetime import UTC, datetime
from types import ModuleType

from benchmarks import (
    bench_batch,
    bench_lag,
    bench_loadgen,
    bench_memory,
    bench_parse,
    bench_single,
)
from benchmarks.common import ROOT, Context, Row, log, machine, make_tmp, remove_tmp

# In running order: the parse ceiling first so batch ingestion can be compared with it.
BENCHMARKS: list[ModuleType] = [
    bench_loadgen,
    bench_parse,
    bench_batch,
    bench_single,
    bench_lag,
    bench_memory,
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
- **Engine lag**: the server's `usertide_engine_lag_seconds` histogram (commit to
  processed, one observation per committed group), differenced over the run, quantiles
  interpolated within buckets (PromQL `histogram_quantile`); and `engine.lag_events`
  from `/healthz` sampled every 100 ms.
- **State memory**: in-process `Engine` with the three built-in processors, each
  configuration in a fresh subprocess; state bytes are `len(engine.codec.encode(state))`.
- **ratio** is "times better than the baseline" (value / baseline for throughput,
  baseline / value for latency and size): above 1 means usertide is better. The machine
  is shared and noisy; compare ratios from the same run rather than absolute numbers
  across runs.
"""


def write_markdown(
    rows: list[tuple[str, ...]],
    notes: list[str],
    command: str,
    took: float,
    failed: list[str],
    m: dict[str, str],
) -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `{command}` on {now} in {took:.0f} s "
        "(`python3 dev.py bench` runs the same). Regenerate rather than edit.",
        "",
        "Machine: " + "; ".join(f"{k} {v}" for k, v in m.items()) + ".",
        "",
        markdown_table(rows),
        "",
    ]
    if failed:
        lines += ["**Failed benchmarks:** " + ", ".join(failed), ""]
    lines += ["## Notes from this run", ""]
    lines += [f"- {n}" for n in notes]
    lines += ["", METHOD]
    (ROOT / "BENCHMARKS.md").write_text("\n".join(lines))


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
        help="write BENCHMARKS.md (default: only for a full run)",
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
    started = time.perf_counter()
    try:
        for bench in selected:
            log(f"\n== {bench.TITLE} ({bench.NAME})")
            t0 = time.perf_counter()
            try:
                got = bench.run(ctx)
            except Exception:
                traceback.print_exc()
                failed.append(bench.NAME)
                ctx.note(f"{bench.NAME}: FAILED (see the console output)")
                continue
            rows.extend(got)
            for row in got:
                log("  " + "  ".join(c for c in cells(row)[1:] if c))
            log(f"  ({time.perf_counter() - t0:.1f} s)")
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
        write_markdown(table, ctx.notes, command, took, failed, m)
        log(f"wrote {ROOT / 'BENCHMARKS.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
