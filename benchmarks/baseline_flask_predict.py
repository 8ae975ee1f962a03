"""The original prediction design: a Flask endpoint over a scikit-learn IsolationForest.

Written the way the original design (and the tutorials it follows) writes it: at start,
``IsolationForest(n_estimators=100, contamination=0.01, random_state=42)`` is fitted on
synthetic ``[clicks_per_minute, pages_per_session]`` sessions (seeded: human-like
sessions plus 1 % bot-like outliers, hence the contamination); then every
``POST /predict_behavior`` with ``{"clicks_per_minute": 18, "pages_per_session": 5}``
is one ``model.predict([[...]])`` call answered with
``{"behavior_prediction": "Anomaly"}`` (-1) or ``"Normal"``. No key check: the original
endpoint has none, so it does strictly less work per request than usertide's.

Served like ``benchmarks/baseline_flask.py``: by gunicorn or waitress when installed,
else Werkzeug's threaded server with HTTP/1.1 keep-alive (the benchmark reports which).

    python -m benchmarks.baseline_flask_predict --port 8002
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from flask import Flask, Response, jsonify, request
from sklearn.ensemble import IsolationForest  # type: ignore[import-untyped]

from benchmarks.baseline_flask import server_kind

FEATURES = ("clicks_per_minute", "pages_per_session")
TRAINING_SESSIONS = 5_000
OUTLIER_SHARE = 0.01


def behaviour_sample(count: int, *, seed: int, outliers: float = OUTLIER_SHARE) -> np.ndarray:
    """``count`` rows of ``[clicks_per_minute, pages_per_session]``: people (about 12
    clicks a minute and 4 pages a session, log-normal, the two loosely correlated) and a
    share of ``outliers`` that click like scripts (100-600 a minute over 30-400 pages)."""
    rng = np.random.default_rng(seed)
    bots = round(count * outliers)
    people = count - bots
    pace = rng.normal(0.0, 1.0, people)  # a busier visitor clicks more and reads more pages
    clicks = np.exp(np.log(12.0) + 0.45 * pace + 0.25 * rng.normal(0.0, 1.0, people))
    pages = 1.0 + np.floor(np.exp(np.log(3.0) + 0.35 * pace + 0.5 * rng.normal(0, 1, people)))
    rows = np.column_stack([np.round(clicks, 1), pages])
    scripted = np.column_stack(
        [np.round(rng.uniform(100.0, 600.0, bots), 1), np.floor(rng.uniform(30.0, 400.0, bots))]
    )
    out = np.concatenate([rows, scripted])
    rng.shuffle(out)
    return out


def create_app(seed: int = 42) -> Flask:
    app = Flask(__name__)
    model = IsolationForest(n_estimators=100, contamination=OUTLIER_SHARE, random_state=42)
    model.fit(behaviour_sample(TRAINING_SESSIONS, seed=seed))

    @app.post("/predict_behavior")
    def predict_behavior() -> tuple[Response, int] | Response:
        body = request.get_json()
        try:
            row = [float(body[name]) for name in FEATURES]
        except (KeyError, TypeError, ValueError):
            return jsonify(error=f"the body must have numbers {', '.join(FEATURES)}"), 400
        label = model.predict([row])[0]
        return jsonify(behavior_prediction="Anomaly" if label == -1 else "Normal")

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok")

    return app


def serve(app: Flask, port: int) -> None:
    """As ``benchmarks.baseline_flask.main`` serves its app."""
    kind = server_kind()
    print(f"prediction baseline on port {port} under {kind}", flush=True)
    if kind.startswith("gunicorn"):
        from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]

        class _App(BaseApplication):  # type: ignore[misc]
            def load_config(self) -> None:
                self.cfg.set("bind", f"127.0.0.1:{port}")
                self.cfg.set("workers", 1)
                self.cfg.set("threads", 16)
                self.cfg.set("worker_class", "gthread")
                self.cfg.set("keepalive", 30)
                self.cfg.set("accesslog", None)

            def load(self) -> Flask:
                return app

        _App().run()
    elif kind.startswith("waitress"):
        import waitress  # type: ignore[import-untyped]

        waitress.serve(app, host="127.0.0.1", port=port, threads=16, _quiet=True)
    else:
        import logging

        from werkzeug.serving import WSGIRequestHandler

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        # HTTP/1.1 so the load generator's keep-alive connections are honoured.
        WSGIRequestHandler.protocol_version = "HTTP/1.1"
        app.run(host="127.0.0.1", port=port, threaded=True, use_reloader=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    serve(create_app(), args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
