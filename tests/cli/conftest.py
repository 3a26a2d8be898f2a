"""What the command-line tests share: ``rag`` run in this process on the
session's embedder."""

from __future__ import annotations

from typing import Any

import pytest

from rag.cli import main as cli
from rag.engine import Rag


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], embedder: Any):
    """``run(*argv)`` -> (exit code, stdout, stderr) of ``rag.cli.main.main``."""
    monkeypatch.setattr(cli, "_engine", lambda settings: Rag(settings, embedder=embedder))

    def _run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        with pytest.raises(SystemExit) as info:
            cli.main(list(argv))
        captured = capsys.readouterr()
        code = info.value.code
        return (0 if code is None else int(code)), captured.out, captured.err

    return _run
