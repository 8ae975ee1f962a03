"""Malformed input never produces a 5xx or crashes the server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livesupport import ADMIN_KEY, WRITE_KEY, make_settings
from sessiontraffic import traffic
from usertide.server import BackgroundServer
from usertide.web import ingest, registry, stream

INGEST_PATHS = [
    "/v1/batch",
    "/v1/track",
    "/v1/identify",
    "/v1/alias",
    "/v1/t",
    "/v1/b",
    "/batch",
    "/capture",
    "/e",
    "/i/v0/e/",
    "/submit",
]
# Aliases (analytics.js's one-letter paths, trailing slashes, /v1/import) share their
# handler with a documented original; the JSON and byte fuzzers above cover them.
ALIASES = [
    path
    for path in ingest.paths()
    if path.endswith("/") or path == "/v1/import" or (path.startswith("/v1/") and len(path) == 5)
] + ["/flags/", "/decide/"]
SCHEMA = schemathesis.openapi.from_dict(registry.openapi()).exclude(path=ALIASES)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)
segmentish = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["track", "page", "identify", "alias", "group", "x"]) | json_values,
        "event": st.text(max_size=10) | json_values,
        "userId": st.text(max_size=10) | json_values,
        "anonymousId": st.text(max_size=10) | json_values,
        "timestamp": st.datetimes().map(lambda d: d.isoformat()) | json_values,
        "properties": json_values,
        "context": st.fixed_dictionaries(
            {}, optional={"ip": json_values, "page": json_values, "userAgent": json_values}
        ),
        "previousId": json_values,
        "messageId": st.text(max_size=8) | json_values,
    },
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    settings_ = make_settings(
        Path(tmp_path_factory.mktemp("fuzz")) / "data", rate_limit_rps=1e9, rate_limit_burst=1e9
    )
    srv = BackgroundServer(settings_)
    srv.start()
    # A session model in force, so the prediction endpoints are fuzzed past "no model yet"
    # (the conversion model stays untrained: its documented 503 is fuzzed too).
    events = traffic(humans=300, bots=3)
    for i in range(0, len(events), 500):
        batch = {"batch": events[i : i + 500]}
        assert httpx.post(f"{srv.url}/v1/batch", json=batch, auth=(WRITE_KEY, "")).is_success
    assert srv.service.runtime.wait_for(srv.service.committer.last_offset)
    srv.service.runtime.checkpoint()
    srv.service.session_trainer.train_once()
    yield srv
    srv.stop()
    assert srv.service.runtime.error is None


def check_response(r: httpx.Response) -> None:
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        error = r.json()["error"]
        assert isinstance(error["code"], str) and isinstance(error["message"], str)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    path=st.sampled_from(INGEST_PATHS),
    body=st.one_of(
        json_values, st.fixed_dictionaries({"batch": st.lists(segmentish, max_size=4)}), segmentish
    ),
)
def test_random_json_never_5xx(server: BackgroundServer, path: str, body: Any) -> None:
    payload = body if not isinstance(body, dict) else {**body, "writeKey": WRITE_KEY}
    r = httpx.post(
        server.url + path, content=json.dumps(payload), headers={"Content-Type": "application/json"}
    )
    check_response(r)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    path=st.sampled_from(INGEST_PATHS),
    raw=st.binary(max_size=300),
    encoding=st.sampled_from(["", "gzip", "deflate"]),
    ctype=st.sampled_from(
        [
            "application/json",
            "text/plain",
            "application/octet-stream",
            "application/x-www-form-urlencoded",
            "",
        ]
    ),
    query=st.sampled_from(["", "?compression=base64", "?compression=gzip-js", "?compression=x"]),
)
def test_random_bytes_never_5xx(
    server: BackgroundServer, path: str, raw: bytes, encoding: str, ctype: str, query: str
) -> None:
    headers = {"Content-Type": ctype, "Content-Encoding": encoding}
    r = httpx.post(
        server.url + path + query,
        content=raw,
        headers={k: v for k, v in headers.items() if v},
        auth=(WRITE_KEY, ""),
    )
    check_response(r)


@SCHEMA.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_openapi_operations_never_5xx(case: Any, server: BackgroundServer) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    if case.path in ingest.paths():
        headers = {"Authorization": httpx.BasicAuth(WRITE_KEY, "")._auth_header}
    if case.path == stream.PATH:
        # The live stream ends only when asked to: each fuzzed request asks for the end
        # within a moment, whatever `timeout` was generated; the other parameters stay
        # fuzzed (test_stream.py checks how `timeout` itself is validated).
        case.query = {**(case.query or {}), "timeout": "0.05"}
    response = case.call(base_url=server.url, headers=headers)
    # a model that is not trained yet is a documented, retryable 503, not a failure
    untrained = response.status_code == 503 and "model_unavailable" in response.text
    assert response.status_code < 500 or untrained, response.text
