"""The ``usertide`` command."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from usertide import __version__


def _serve(args: argparse.Namespace) -> int:
    from usertide.config import load_settings
    from usertide.server import UsertideServer
    from usertide.service import Service
    from usertide.store import StoreLocked

    settings = load_settings(data_dir=args.data_dir, host=args.host, port=args.port)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s %(message)s"
    )
    try:
        service = Service.create(settings)
    except StoreLocked as exc:
        holder = f"process {exc.pid}" if exc.pid is not None else "another process"
        print(
            f"usertide: the data in {settings.data_dir} is in use by {holder} "
            f"({exc.program or 'unknown program'}). One usertide serves a data dir at a "
            "time: stop that process, or give this one another --data-dir.",
            file=sys.stderr,
        )
        return 1
    service.start()
    tune_gc()
    _announce_keys(service)
    print(
        f"usertide {__version__} on http://{settings.host}:{settings.port} "
        f"(data in {settings.data_dir})",
        flush=True,
    )
    UsertideServer(service, settings).run()
    return 0


def tune_gc() -> None:
    """Process-wide settings for a busy service.

    The service keeps many long-lived containers (user state, caches); with the
    default thresholds the cyclic collector rescans them all the time. Objects alive
    after start-up are frozen out of collection and young collections run less often.
    """
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 50)
    # DuckDB calls release the GIL and must win it back from the HTTP and engine
    # threads; with the default 5 ms switch interval each call can wait that long.
    sys.setswitchinterval(0.0005)


def _announce_keys(service: object) -> None:
    from usertide.service import Service

    assert isinstance(service, Service)
    new = service.new_keys
    if new.admin or new.write:
        print("New keys were generated. They are stored hashed and will not be shown again:")
        if new.admin:
            print(f"  admin key: {new.admin}")
        if new.write:
            print(f"  write key: {new.write}")
        sys.stdout.flush()


def _demo(args: argparse.Namespace) -> int:
    from usertide.demo.run import run_demo

    return run_demo(
        users=args.users, days=args.days, seed=args.seed, keep=args.keep, port=args.port
    )


def _import(args: argparse.Namespace) -> int:
    from usertide.importers.run import run_import

    return run_import(
        Path(args.file), data_dir=args.data_dir, fmt=args.format, columns=args.columns
    )


def _column_names(text: str) -> list[str]:
    # Only split: the CSV importer checks the names (empty, repeated) for every caller.
    return [name.strip() for name in text.split(",")]


def _eval_login(args: argparse.Namespace) -> int:
    from usertide.evaluation.cli import run_eval_login

    return run_eval_login(Path(args.file), args.json)


def _eval_conversion(args: argparse.Namespace) -> int:
    from usertide.evaluation.conversion_eval import run_eval_conversion

    return run_eval_conversion(args.train, args.test, args.split_by_time, args.file, args.json)


def _eval_anomaly(args: argparse.Namespace) -> int:
    from usertide.evaluation.anomaly_backtest import run_eval_anomaly

    return run_eval_anomaly(
        Path(args.file), args.train_fraction, args.threshold, args.detector, args.json
    )


def _eval_recommend(args: argparse.Namespace) -> int:
    from usertide.evaluation.recommend_eval import run_eval_recommend

    return run_eval_recommend(
        args.train,
        args.test,
        args.sequences,
        args.online,
        args.recommender,
        args.json,
        negatives=args.negatives,
        seed=args.seed,
    )


def _train(args: argparse.Namespace) -> int:
    from usertide.anomaly.train_cli import run_train

    return run_train(args.model, data_dir=args.data_dir, admin_key=args.admin_key)


def _simulate_logins(args: argparse.Namespace) -> int:
    from usertide.evaluation.cli import run_simulate_logins

    return run_simulate_logins(Path(args.out), args.users, args.days, args.seed)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="usertide", description=__doc__)
    parser.add_argument("--version", action="version", version=f"usertide {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the service on the embedded store")
    serve.add_argument("--data-dir", type=Path, default=None)
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.set_defaults(func=_serve)

    demo = sub.add_parser("demo", help="run the whole thing on a simulated site")
    demo.add_argument("--users", type=int, default=2_000)
    demo.add_argument("--days", type=float, default=3.0)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--port", type=int, default=None)
    demo.add_argument("--keep", action="store_true", help="leave the server running")
    demo.set_defaults(func=_demo)

    imp = sub.add_parser("import", help="load historical events from a file")
    imp.add_argument("file")
    imp.add_argument("--data-dir", type=Path, default=None)
    imp.add_argument("--format", choices=["jsonl", "csv", "accesslog"], default=None)
    imp.add_argument(
        "--columns",
        type=_column_names,
        default=None,
        metavar="NAME,NAME,...",
        help="CSV without a header row: the names of its columns (e.g. user_id,event,timestamp)",
    )
    imp.set_defaults(func=_import)
    train = sub.add_parser("train", help="train a new model version now and put it in force")
    train.add_argument(
        "--model", default="session_anomaly", choices=["session_anomaly", "population"]
    )
    train.add_argument("--data-dir", type=Path, default=None)
    train.add_argument(
        "--admin-key",
        default=None,
        help="for a running server (default: $USERTIDE_ADMIN_KEY)",
    )
    train.set_defaults(func=_train)
    evaluation = sub.add_parser("eval", help="offline evaluation of detectors")
    eval_sub = evaluation.add_subparsers(dest="what", required=True)
    login = eval_sub.add_parser("login", help="sign-in risk: ours vs the textbook baseline")
    login.add_argument("file", help="JSON lines of Segment 'login' track events with labels")
    login.add_argument("--json", action="store_true", help="machine-readable output")
    login.set_defaults(func=_eval_login)
    conversion = eval_sub.add_parser(
        "conversion", help="ad-click conversion: boosted trees vs an hour/weekday baseline"
    )
    conversion.add_argument("file", nargs="?", type=Path, help="with --split-by-time only")
    conversion.add_argument("--train", type=Path, help="labelled clicks (TalkingData CSV)")
    conversion.add_argument("--test", type=Path, help="later labelled clicks")
    conversion.add_argument(
        "--split-by-time", type=float, metavar="FRACTION", help="train on the earliest share"
    )
    conversion.add_argument("--json", action="store_true", help="machine-readable output")
    conversion.set_defaults(func=_eval_conversion)
    anomaly = eval_sub.add_parser(
        "anomaly", help="backtest the abnormal-session alert: what it would have raised"
    )
    anomaly.add_argument("file", help="JSON lines of Segment events in time order")
    anomaly.add_argument(
        "--train-fraction", type=float, default=0.5, help="sessions that train the model"
    )
    anomaly.add_argument("--threshold", type=float, default=None, help="score that flags")
    anomaly.add_argument("--detector", default="isolation_forest")
    anomaly.add_argument("--json", action="store_true", help="machine-readable output")
    anomaly.set_defaults(func=_eval_anomaly)
    rec = eval_sub.add_parser(
        "recommend", help="next-item recommendations: ours beside the textbook baselines"
    )
    rec.add_argument("--train", type=Path, help="sessions to learn (TSV: SessionId ItemId Time)")
    rec.add_argument("--test", type=Path, help="later sessions: each prefix predicts what's next")
    rec.add_argument(
        "--sequences", type=Path, help="'user item' lines in time order: leave-one-out instead"
    )
    rec.add_argument(
        "--online", action="store_true", help="learn each test event right after predicting it"
    )
    rec.add_argument(
        "--recommender", action="extend", nargs="+", metavar="NAME", help="default: all"
    )
    rec.add_argument("--negatives", type=int, default=100, help="--sequences: sampled negatives")
    rec.add_argument("--seed", type=int, default=42, help="--sequences: for the negatives")
    rec.add_argument("--json", action="store_true", help="machine-readable output")
    rec.set_defaults(func=_eval_recommend)
    sim = eval_sub.add_parser("simulate-logins", help="write a labelled sign-in stream")
    sim.add_argument("out")
    sim.add_argument("--users", type=int, default=2_000)
    sim.add_argument("--days", type=int, default=60)
    sim.add_argument("--seed", type=int, default=2016)
    sim.set_defaults(func=_simulate_logins)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
