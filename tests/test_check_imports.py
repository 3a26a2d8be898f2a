"""The import contract of rag/ (.ci/check_imports.py): the repository keeps it, and a
copy broken on purpose (an upward import, a circle, an import of server) fails it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECK = ROOT / ".ci" / "check_imports.py"


def _run(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(CHECK), "--root", str(root)], capture_output=True, text=True,
                          timeout=120)


def test_the_repository_keeps_the_contract() -> None:
    done = _run(ROOT)
    assert done.returncode == 0, done.stdout
    assert "no circle, no upward import" in done.stdout


def _broken(tmp_path: Path, module: str, line: str) -> subprocess.CompletedProcess[str]:
    """The check run on a copy of rag/ with ``line`` added to ``module`` (a path under rag/)."""
    shutil.copytree(ROOT / "rag", tmp_path / "rag", ignore=shutil.ignore_patterns("__pycache__", "*.json"))
    with (tmp_path / "rag" / module).open("a", encoding="utf-8") as fh:
        fh.write(line)
    return _run(tmp_path)


def test_an_import_from_a_lower_floor_to_a_higher_one_fails(tmp_path: Path) -> None:
    done = _broken(tmp_path, "index/lexical.py",
                   "\n\ndef _later():\n    from rag.answer.selection import select  # upward, inside a function\n")
    assert done.returncode == 1
    assert "rag/index/lexical.py:" in done.stdout
    assert "rag.index.lexical (floor 1) imports rag.answer.selection (floor 3), a higher floor" in done.stdout


def test_a_circle_fails_and_is_named(tmp_path: Path) -> None:
    done = _broken(tmp_path, "answer/question.py", "\nfrom rag.answer import followup  # followup imports question\n")
    assert done.returncode == 1
    assert "import circle among: rag.answer.followup, rag.answer.question" in done.stdout


def test_rag_never_imports_the_server(tmp_path: Path) -> None:
    done = _broken(tmp_path, "engine.py", "\nimport server.app\n")
    assert done.returncode == 1 and "rag.engine imports server.app (rag never imports server)" in done.stdout
