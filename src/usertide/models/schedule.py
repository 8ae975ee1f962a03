"""Retraining on a schedule: one background thread per trainer, calling its
``train_once`` every ``interval`` seconds (0: only when asked)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Schedule:
    def __init__(
        self,
        name: str,
        interval: float,
        work: Callable[[], object],
        expected: tuple[type[Exception], ...] = (),
    ) -> None:
        """``expected``: failures that only mean "not yet" (too little data), logged at
        info level; any other failure is logged with its traceback, and the next run
        comes on schedule."""
        self.name = name
        self.interval = interval
        self.work = work
        self.expected = expected
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.interval <= 0:
            return
        self._thread = threading.Thread(target=self._run, name=f"usertide-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.work()
            except self.expected as exc:
                log.info("%s not trained: %s", self.name, exc)
            except Exception:
                log.exception("%s training failed", self.name)
