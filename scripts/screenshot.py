"""Regenerate the README's dashboard screenshots (``python3 dev.py screenshot``).

A fresh service takes a simulated shop (the demo's simulator, 400 users over two days),
then Debian's Chromium, driven by Playwright, signs in and photographs the overview
and the shop's funnel into ``docs/``.
"""

from __future__ import annotations

import secrets
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx

from usertide.config import load_settings
from usertide.demo.funnel import STEPS
from usertide.demo.simulator import Simulation, SimulationConfig
from usertide.server import BackgroundServer, free_port

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def main() -> int:
    from playwright.sync_api import sync_playwright

    admin, write = "uta_" + secrets.token_urlsafe(18), "utw_" + secrets.token_urlsafe(18)
    data_dir = Path(tempfile.mkdtemp(prefix="usertide-screenshot-"))
    settings = load_settings(
        {}, data_dir=data_dir, admin_key=admin, write_key=write, port=free_port(),
        log_level="warning", rate_limit_rps=1e9, rate_limit_burst=1e9,
    )  # fmt: skip
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    events = list(Simulation(SimulationConfig(users=400, days=2, seed=11, start=start)).events())
    server = BackgroundServer(settings)
    server.start()
    try:
        with httpx.Client(base_url=server.url, auth=(write, ""), timeout=30) as client:
            for i in range(0, len(events), 500):
                client.post("/v1/batch", json={"batch": events[i : i + 500]}).raise_for_status()
        service = server.service
        service.runtime.wait_for(service.committer.last_offset, timeout=120)
        service.runtime.checkpoint()
        funnel = urlencode(
            [*(("step", s) for s in STEPS), *(("where", "") for _ in STEPS), ("window", "1d"),
             ("from", (start - timedelta(hours=1)).isoformat()),
             ("to", (datetime.now(UTC) + timedelta(hours=1)).isoformat())]
        )  # fmt: skip
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(server.url + "/dashboard/")
            page.fill("#key", admin)
            page.click("#signin")
            page.wait_for_selector("#epm-chart .main-svg")
            page.wait_for_timeout(1500)
            page.screenshot(path=str(ROOT / "docs" / "dashboard-overview.png"))
            page.goto(server.url + "/dashboard/funnels?" + funnel)
            page.wait_for_selector("#funnel-chart .main-svg")
            page.wait_for_timeout(1000)
            page.screenshot(path=str(ROOT / "docs" / "dashboard-funnel.png"), full_page=True)
            browser.close()
    finally:
        server.stop()
    print(
        f"wrote docs/dashboard-overview.png and docs/dashboard-funnel.png ({len(events):,} events)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
