"""The install is the locked one: every package in requirements.lock is installed
at its locked version (what .ci/setup installs, sha256-checked), and the lock holds
the parts whose versions matter most."""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def locked() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        if m := PIN.match(line):
            pins[canonicalize_name(m.group(1))] = m.group(2)
    return pins


def test_the_lock_pins_every_package_with_hashes() -> None:
    lines = LOCK.read_text(encoding="utf-8").splitlines()
    hashed = [line for line, after in zip(lines, lines[1:])
              if PIN.match(line) and line.endswith(" \\") and after.strip().startswith("--hash=sha256:")]
    pins_by_name = locked()
    assert len(hashed) == len(pins_by_name) > 100
    assert pins_by_name["torch"].endswith("+cpu")
    assert {"llama-cpp-python", "chromadb", "sentence-transformers", "onnxruntime", "fastapi"} <= set(pins_by_name)


def test_every_locked_package_is_installed_at_its_locked_version() -> None:
    wrong = {}
    for name, pinned in locked().items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = "missing"
        if installed != pinned:
            wrong[name] = (pinned, installed)
    assert not wrong, f"installed versions differ from requirements.lock (run 'bash .ci/setup'): {wrong}"


def test_setup_installs_from_the_lock_with_hashes_checked() -> None:
    setup = (ROOT / ".ci" / "setup").read_text(encoding="utf-8")
    assert "LOCK=requirements.lock" in setup and '--require-hashes -r "$LOCK"' in setup
    assert '--no-deps -e .' in setup
