#!/usr/bin/env python3
"""Bootstrap and run: ``python3 dev.py demo`` or ``python3 dev.py test``.

Creates ``.venv`` on first use (and refreshes it when pyproject.toml changes), installs
usertide with its dependencies from the package index, then runs the command. Needs
only Python >= 3.11.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"


def ensure_env(extras: str) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this file runs before any check
        sys.exit("usertide needs Python >= 3.11")
    stamp = VENV / f".stamp-{extras or 'base'}"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest and PY.exists():
        return
    if not PY.exists():
        print("creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
        pip(["install", "-q", "--upgrade", "pip"])
    target = f".[{extras}]" if extras else "."
    print(f"installing usertide{f'[{extras}]' if extras else ''} into .venv ...", flush=True)
    pip(["install", "-q", "-e", target])
    stamp.write_text(digest)


def pip(args: list[str]) -> None:
    """Run pip with its output held back: shown (and its exit code passed on) only when
    it fails, so warnings from the build backend or the machine's pip configuration do
    not bury ours."""
    done = subprocess.run(
        [str(PY), "-m", "pip", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
    )
    if done.returncode:
        sys.stdout.buffer.write(done.stdout)
        sys.stdout.flush()
        sys.exit(done.returncode)


def run(cmd: list[str]) -> None:
    code = subprocess.call(cmd, cwd=ROOT)
    if code:
        sys.exit(code)


def main() -> None:
    args = sys.argv[1:]
    if not args or args[0] not in ("demo", "test", "lint", "bench", "screenshot", "usertide"):
        sys.exit("usage: python3 dev.py demo|test|lint|bench|screenshot|usertide [args...]")
    command, rest = args[0], args[1:]
    if command == "demo":
        ensure_env("")
        run([str(BIN / "usertide"), "demo", *rest])
    elif command == "usertide":
        ensure_env("")
        run([str(BIN / "usertide"), *rest])
    elif command == "lint":
        ensure_env("dev")
        lint()
    elif command == "test":
        ensure_env("dev")
        lint()
        run([str(PY), "-m", "pytest", *rest])
    elif command == "bench":
        ensure_env("dev")
        run([str(PY), "-m", "benchmarks", *rest])
    elif command == "screenshot":  # the README's dashboard pictures, in docs/
        ensure_env("dev")
        run([str(PY), "scripts/screenshot.py", *rest])


def lint() -> None:
    paths = ["src", "tests", "benchmarks", "scripts", "dev.py"]
    run([str(BIN / "ruff"), "check", *paths])
    run([str(BIN / "ruff"), "format", "--check", *paths])
    run([str(BIN / "mypy")])


if __name__ == "__main__":
    main()
