"""The learned evidence ranker (rag.answer.ranker): what it reads of a unit, the shipped
files checked by hash and loaded offline, and its scores on a few plain cases."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from rag.errors import ModelError
from rag.answer.ranker import MODEL_FILE, TOKENIZER_FILE, RankerFiles, default_files, load_ranker, passage


def test_the_ranker_reads_a_unit_under_the_end_of_its_section_path() -> None:
    assert passage("", "The archives are updated twice every day.") == "The archives are updated twice every day."
    assert passage("FAQ > 2. Packages > 2.2. Are there upgrades in stable?", "No.") == \
        "2. Packages > 2.2. Are there upgrades in stable?: No."
    assert passage("A" * 300, "x").startswith("A" * 100 + ": ")


def test_the_shipped_files_are_the_ones_the_manifest_names() -> None:
    files = default_files()
    for name in (MODEL_FILE, TOKENIZER_FILE):
        assert hashlib.sha256((files.folder / name).read_bytes()).hexdigest() == files.sha256[name]


@pytest.fixture(scope="module")
def ranker():
    return load_ranker(default_files())


def test_it_ranks_the_unit_that_answers_above_ones_that_only_share_words(ranker) -> None:
    question = "How often are the Debian archives updated?"
    units = [passage("1.2. What is Debian?", "The Debian archives also carry about 1000 packages in non-free."),
             passage("1.2. What is Debian?", "The archives are updated twice every day."),
             passage("Mirrors", "A list of Debian archive mirrors is on the web site.")]
    scores = ranker.scores(question, units)
    assert scores.shape == (3,) and int(np.argmax(scores)) == 1
    assert np.array_equal(ranker.scores(question, units), scores)  # deterministic
    assert ranker.scores(question, []).shape == (0,)


def test_a_damaged_file_is_one_clear_error(tmp_path: Path) -> None:
    files = default_files()
    copy = tmp_path / "ranker"
    shutil.copytree(files.folder, copy)
    raw = bytearray((copy / MODEL_FILE).read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (copy / MODEL_FILE).write_bytes(bytes(raw))
    with pytest.raises(ModelError, match="sha256 differs.*RAG_RANKER=false"):
        load_ranker(RankerFiles(copy, files.sha256))
    (copy / MODEL_FILE).unlink()
    with pytest.raises(ModelError, match="cannot be used"):
        load_ranker(RankerFiles(copy, files.sha256))


def test_rag_doctor_checks_the_ranker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rag.answer.ranker
    from rag.cli.doctor import Health, _check_ranker
    from rag.settings import Settings

    health = Health()
    _check_ranker(Settings(data_dir=tmp_path, ranker=True), health)
    assert health.ok and "match their sha256" in health.notes[0]
    off = Health()
    _check_ranker(Settings(data_dir=tmp_path), off)  # off by default
    assert off.ok and "RAG_RANKER=false" in off.notes[0]
    files = default_files()
    copy = tmp_path / "ranker"
    shutil.copytree(files.folder, copy)
    (copy / TOKENIZER_FILE).write_text("{}", encoding="utf-8")
    monkeypatch.setattr(rag.answer.ranker, "default_files", lambda: RankerFiles(copy, files.sha256))
    damaged = Health()
    _check_ranker(Settings(data_dir=tmp_path, ranker=True), damaged)
    assert not damaged.ok and TOKENIZER_FILE in damaged.problems[0]
