"""The training suite (eval/train/): every gold fact stands in an evidence unit of a
supporting source as ingestion cuts it, and the suite keeps the shape its rules ask."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TRAIN = ROOT / "eval" / "train"


@pytest.mark.slow
def test_every_training_question_passes_the_checker() -> None:
    done = subprocess.run([sys.executable, str(TRAIN / "check.py")], capture_output=True, text=True, cwd=ROOT,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1].endswith(" questions, 0 failing")


def test_the_suite_has_the_size_and_mix_its_rules_ask() -> None:
    suite = json.loads((TRAIN / "suite.json").read_text())
    rows = [json.loads(line) for c in suite["corpora"] for line in (TRAIN / c["questions"]).read_text().splitlines()
            if line.strip()]
    answerable = [r for r in rows if r["answerable"]]
    assert len(suite["corpora"]) >= 25 and len(rows) >= 1500
    assert 0.12 <= 1 - len(answerable) / len(rows) <= 0.22  # about one in six unanswerable
    assert 0.2 <= sum(len(r["answers"]) > 1 for r in answerable) / len(answerable) <= 0.3  # a quarter: two facts
    assert {c["documents"] for c in suite["corpora"]} == {f"corpora/{p.name}" for p in (TRAIN / "corpora").iterdir()}
