"""Pinned npm packages for browser tests, installed once into a cache outside the repository.

``npm_packages({"posthog-js": "1.449.2"})`` returns a directory holding ``node_modules``
with exactly those versions. The directory is named by a hash of the pinned versions
(``~/.cache/usertide-test/npm/<hash>``, or under ``$USERTIDE_TEST_CACHE``) and reused when
present. An install runs in a temporary directory beside it under an exclusive lock and
is renamed into place when complete, so parallel test runs neither race nor see half an
install. Nothing of the packages' code lives in the repository.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

MARKER = ".usertide-complete"


class NpmUnavailable(Exception):
    """npm is missing or the install failed (no network, registry refused...)."""


def cache_root() -> Path:
    configured = os.environ.get("USERTIDE_TEST_CACHE")
    base = Path(configured) if configured else Path.home() / ".cache" / "usertide-test"
    return base / "npm"


def _key(packages: Mapping[str, str]) -> str:
    pinned = json.dumps(dict(sorted(packages.items())), separators=(",", ":"))
    return hashlib.sha256(pinned.encode()).hexdigest()[:16]


def _installed(directory: Path, packages: Mapping[str, str]) -> bool:
    if not (directory / MARKER).is_file():
        return False
    for name, version in packages.items():
        manifest = directory / "node_modules" / name / "package.json"
        try:
            if json.loads(manifest.read_text())["version"] != version:
                return False
        except (OSError, ValueError, KeyError):
            return False
    return True


def npm_packages(packages: Mapping[str, str], timeout: float = 600) -> Path:
    """The cache directory with ``node_modules`` holding ``packages`` (name -> exact version)."""
    root = cache_root()
    target = root / _key(packages)
    if _installed(target, packages):
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise NpmUnavailable("npm is not installed")
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run may be installing the same set
        if _installed(target, packages):
            return target
        work = Path(tempfile.mkdtemp(prefix=f"{target.name}.tmp-", dir=root))
        try:
            manifest = {
                "name": "usertide-test-sdks",
                "version": "0.0.0",
                "private": True,
                "dependencies": dict(packages),
            }
            (work / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
            try:
                done = subprocess.run(
                    [npm, "install", "--no-audit", "--no-fund", "--silent"],
                    cwd=work,
                    capture_output=True,
                    text=True,
                    timeout=timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise NpmUnavailable(f"npm install took longer than {timeout} s") from exc
            if done.returncode != 0:
                output = (done.stderr or done.stdout)[-2000:]
                raise NpmUnavailable(f"npm install failed ({done.returncode}): {output}")
            (work / MARKER).write_text(json.dumps(dict(packages)) + "\n")
            if not _installed(work, packages):
                raise NpmUnavailable(f"npm did not install the pinned versions {dict(packages)}")
            if target.exists():  # a broken leftover (no marker): replace it
                shutil.rmtree(target)
            os.rename(work, target)
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)
    return target
