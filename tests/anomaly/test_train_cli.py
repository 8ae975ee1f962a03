"""usertide train: through the running server, or on the data dir when none runs."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from livesupport import ADMIN_KEY, WRITE_KEY, make_settings
from sessiontraffic import traffic
from usertide.cli import main
from usertide.server import BackgroundServer


def fill(server: BackgroundServer) -> None:
    events = traffic(humans=300, bots=3)
    for i in range(0, len(events), 500):
        r = httpx.post(
            f"{server.url}/v1/batch", json={"batch": events[i : i + 500]}, auth=(WRITE_KEY, "")
        )
        assert r.status_code == 200
    service = server.service
    assert service.runtime.wait_for(service.committer.last_offset)
    service.runtime.checkpoint()


def test_train_through_the_running_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    server = BackgroundServer(make_settings(data))
    server.start()
    try:
        fill(server)
        monkeypatch.delenv("USERTIDE_ADMIN_KEY", raising=False)
        assert main(["train", "--data-dir", str(data)]) == 1
        assert "--admin-key" in capsys.readouterr().err
        assert main(["train", "--data-dir", str(data), "--admin-key", "wrong"]) == 1
        assert "401" in capsys.readouterr().err
        assert main(["train", "--data-dir", str(data), "--admin-key", ADMIN_KEY]) == 0
        assert "session_anomaly v1 trained on" in capsys.readouterr().out
        assert server.service.session_trainer.models.version == 1
    finally:
        server.stop()


def test_train_on_the_data_dir_when_no_server_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    assert main(["train", "--data-dir", str(data)]) == 1
    assert "no store" in capsys.readouterr().err
    server = BackgroundServer(make_settings(data))
    server.start()
    fill(server)
    server.stop()
    assert main(["train", "--data-dir", str(data)]) == 0
    assert "session_anomaly v1 trained" in capsys.readouterr().out
    again = BackgroundServer(make_settings(data))
    again.start()
    try:  # the next server starts with it in force
        assert again.service.session_trainer.models.version == 1
    finally:
        again.stop()
