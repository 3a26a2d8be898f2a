"""The model check: the configured model loads and decodes in a child process,
so that a crash inside llama.cpp is one line naming the cause and the setting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.answer import model_check
from rag.errors import ModelError
from rag.answer.llama_model import AMX_FLAGS, cpu_flags
from rag.settings import Settings

HAS_AMX = bool(AMX_FLAGS & (cpu_flags() or frozenset()))
ROOT = Path(__file__).resolve().parents[2]


def rag(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RAG_") or k == "RAG_CACHE_DIR"}
    return subprocess.run([sys.executable, "-m", "rag", *argv], capture_output=True, text=True, cwd=ROOT,
                          env={**base, "HF_HUB_OFFLINE": "1", **env}, timeout=600)


def test_the_default_model_passes_in_a_child_process() -> None:
    result = model_check.run_check(Settings())
    assert result.ok, result.summary
    assert "loads and decodes" in result.summary and "weight repacking" in result.summary
    assert ("repacking off" in result.summary) is HAS_AMX


@pytest.mark.skipif(not HAS_AMX, reason="the repacked AMX path crashes only on a CPU with AMX")
def test_repacking_forced_on_an_amx_cpu_is_one_line_not_a_crash() -> None:
    result = model_check.run_check(Settings(llm_repack="on"))
    assert not result.ok
    assert "crashed llama.cpp at its first decode (SIGSEGV)" in result.summary
    assert "RAG_LLM_REPACK=off" in result.summary and "\n" not in result.summary


def test_a_child_that_dies_of_a_signal_is_reported_with_the_signal_and_the_setting(monkeypatch) -> None:
    dies = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"]
    monkeypatch.setattr(model_check, "_child_command", lambda settings: dies)
    result = model_check.run_check(Settings(llm_repack="on"))
    assert not result.ok
    assert "crashed llama.cpp at its first decode (SIGSEGV) with weight repacking on (RAG_LLM_REPACK=on)" \
        in result.summary
    assert "set RAG_LLM_REPACK=off" in result.summary
    off = model_check.run_check(Settings(llm_repack="off"))
    assert "repacking is already off, so it is not the AMX defect" in off.summary


def test_a_file_that_is_not_a_model_is_one_line(tmp_path: Path) -> None:
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"GGUF" + b"\x00" * 64)
    result = model_check.run_check(Settings(model_path=fake))
    assert not result.ok and result.summary.startswith("the model check of fake.gguf failed: cannot load model")
    missing = model_check.run_check(Settings(model_path=tmp_path / "nowhere.gguf"))
    assert not missing.ok and missing.summary.startswith("model file not found")


def test_a_passed_check_is_remembered_and_a_failed_one_is_not(tmp_path: Path, monkeypatch) -> None:
    settings = Settings(cache_dir=tmp_path)
    calls: list[str] = []
    outcome = [model_check.ModelCheck(False, "it crashed")]
    monkeypatch.setattr(model_check, "run_check", lambda s: calls.append("run") or outcome[0])
    with pytest.raises(ModelError, match="it crashed"):
        model_check.ensure_checked(settings)
    assert not (tmp_path / model_check.STAMPS).exists()
    outcome[0] = model_check.ModelCheck(True, "fine")
    model_check.ensure_checked(settings)
    model_check.ensure_checked(settings)
    assert calls == ["run", "run"]  # the second success came from the stamp
    stamps = json.loads((tmp_path / model_check.STAMPS).read_text())
    assert [v["model"] for v in stamps.values()] == [Path(settings.model_path).name]
    model_check.ensure_checked(Settings(cache_dir=tmp_path, n_gpu_layers=1))  # other options: checked again
    assert calls == ["run", "run", "run"]


def test_rag_doctor_checks_the_model(tmp_path: Path) -> None:
    ok = rag("doctor", "--only", "model", "--json")
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert report["ok"] is True and report["model"]["ok"] is True
    assert "loads and decodes" in report["model"]["notes"][0]
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not a model")
    bad = rag("doctor", "--model", str(fake), "--data-dir", str(tmp_path / "data"))
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert [ln for ln in bad.stderr.splitlines() if ln.strip()] == [
        ln for ln in bad.stderr.splitlines() if ln.startswith("problem: the model check of fake.gguf failed")]
    assert f"no index in {tmp_path / 'data'} yet" in bad.stdout


@pytest.mark.skipif(not HAS_AMX, reason="the repacked AMX path crashes only on a CPU with AMX")
def test_rag_ask_with_repacking_forced_on_an_amx_cpu_says_so_in_one_line(seeded_dir: Path) -> None:
    proc = rag("ask", "Who is Nick Clegg?", "--data-dir", str(seeded_dir), RAG_LLM_REPACK="on")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and proc.stdout == ""
    assert proc.stderr.strip().startswith("error: SmolLM2-135M-Instruct.Q4_1.gguf crashed llama.cpp")
    assert len(proc.stderr.strip().splitlines()) == 1
