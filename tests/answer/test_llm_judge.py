"""The accurate mode's judge (rag.answer.llm_judge) on the real default GGUF model: one
score a passage, the same whatever was read before it (the question's tokens are
reused from llama.cpp's cache), and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.errors import ModelError
from rag.settings import Settings

PASSAGES = ["The ferry to the island leaves at seven every morning.",
            "Tickets are sold at the kiosk by the harbour.",
            "The bakery closes at noon on Sundays."]


@pytest.fixture(scope="module")
def judge():
    from rag.answer.llm_judge import LlmJudge

    return LlmJudge(Settings().model_path, n_threads=2)


@pytest.mark.slow
def test_a_passage_scores_the_same_whatever_was_read_before_it(judge) -> None:
    question = "When does the ferry leave?"
    together = judge.scores(question, PASSAGES)
    assert together.shape == (3,) and np.all(np.isfinite(together))
    alone = [judge.scores(question, [p])[0] for p in reversed(PASSAGES)][::-1]
    judge.scores("Who sells the tickets?", PASSAGES[:1])  # another question in between
    again = judge.scores(question, PASSAGES)
    assert np.allclose(together, alone, atol=1e-3) and np.allclose(together, again, atol=1e-3)
    assert judge.scores(question, []).shape == (0,)


def test_a_missing_rerank_model_is_one_clear_error(tmp_path: Path) -> None:
    from rag.answer.llm_judge import LlmJudge

    with pytest.raises(ModelError, match="rerank model not found.*models.fetch"):
        LlmJudge(tmp_path / "nope.gguf")


def test_the_accurate_mode_needs_its_fitted_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rag.answer.selection
    from rag.engine import Rag

    monkeypatch.setattr(rag.answer.selection, "JUDGED_POLICY_FILE", tmp_path / "policy_judged.json")
    engine = Rag(Settings(data_dir=tmp_path, rerank_model=tmp_path / "judge.gguf", ranker=True))
    with pytest.raises(ModelError, match="no fitted policy.*fit_policy.py --judged"):
        engine.policy_file()
    off = Rag(Settings(data_dir=tmp_path, rerank_model=tmp_path / "judge.gguf", ranker=False,
                       policy=rag.answer.selection.SIGNALS_POLICY_FILE))
    with pytest.raises(ModelError, match="needs RAG_RANKER=true"):
        off.pipeline  # noqa: B018
