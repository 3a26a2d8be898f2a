"""``rag eval --url`` against the real HTTP service gives the in-process verdicts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import DEV


def test_eval_over_http_matches_the_contract(api_url: str, tmp_path: Path) -> None:
    lines = DEV.read_text().splitlines()
    picked = [ln for ln in lines if json.loads(ln)["answerable"]][:3] + \
             [ln for ln in lines if not json.loads(ln)["answerable"]][:1]
    dataset = tmp_path / "mini.jsonl"
    dataset.write_text("\n".join(picked) + "\n")
    report = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-m", "rag", "eval", str(dataset), "--url", api_url,
                           "--json-out", str(report)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(report.read_text())
    assert data["metrics"]["questions"] == 4 and len(data["questions"]) == 4
    assert data["metrics"]["strict"] >= 0.75
