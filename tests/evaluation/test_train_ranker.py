"""The ranker's training script (eval/train/train_ranker.py) end to end on a small
slice of the committed training table: twice, into temporary folders, giving the
same cross-fitted scores and a model that ranks a fixed example set the same way."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag.index.onnx_embedder import new_session
from rag.answer.ranker import MODEL_FILE, TOKENIZER_FILE, Ranker, make_tokenizer, passage

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = (  # made up here; none of them is in the training or the development suite
    ("How long is a season ticket valid?",
     [passage("Tickets", "A season ticket is valid for twelve months from the day it is bought."),
      passage("Tickets", "Season tickets are sold at the main office."),
      passage("Opening hours", "The office is closed on public holidays.")]),
    ("Which flag turns off colour output?",
     [passage("Options", "--no-color turns off colour in every report."),
      passage("Options", "Colour output is on by default when the output is a terminal."),
      passage("Install", "Install the tool with the package manager of your system.")]),
)


def _train(out: Path) -> tuple[dict, list[list[int]]]:
    done = subprocess.run([sys.executable, "eval/train/train_ranker.py", "--slice", "6", "--epochs", "1",
                           "--fold-epochs", "1", "--out", str(out / "model"), "--scores", str(out / "scores.json.gz"),
                           "--no-manifest"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    with gzip.open(out / "scores.json.gz", "rt", encoding="utf-8") as fh:
        scores = json.load(fh)
    ranker = Ranker(new_session(str(out / "model" / MODEL_FILE)),
                    make_tokenizer((out / "model" / TOKENIZER_FILE).read_text(encoding="utf-8")))
    rankings = [np.argsort(-ranker.scores(q, units), kind="stable").tolist() for q, units in EXAMPLES]
    return scores, rankings


@pytest.mark.slow
def test_the_training_script_reproduces_its_ranker_on_a_slice(tmp_path: Path) -> None:
    first_scores, first = _train(tmp_path / "one")
    second_scores, second = _train(tmp_path / "two")
    assert len(first_scores["folds"]) == 2 and sum(map(len, first_scores["folds"])) == 4  # 4 corpora, 2 folds
    read = [s for col in first_scores["scores"].values() for s in col if s is not None]
    assert read and len(first_scores["scores"]) == 4 * 6
    assert first_scores == second_scores
    assert first == second
