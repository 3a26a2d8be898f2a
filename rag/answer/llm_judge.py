"""The accurate mode's second-stage ranker: a larger instruction model (any GGUF,
such as Qwen2.5-Coder-1.5B-Instruct) asked whether each of the best few units
answers the question; its score is how much more it leans to "yes" than to "no"
(the difference of the two answers' logits at its first reply token).

The question comes before the passage, so the tokens of everything up to the
passage are computed once per question and kept in the model's cache while each
unit is read (llama.cpp keeps the longest common prefix); a unit costs only its
own tokens and the closing request. Slow on a small CPU (about 1 s a unit for a
1.5B model on 2 cores): off unless ``--rerank-model`` / ``RAG_RERANK_MODEL`` names
a model."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag.errors import ModelError
from rag.answer.llama_model import Repack, load_llama, repack_here

if TYPE_CHECKING:
    from llama_cpp import Llama

log = logging.getLogger(__name__)

SYSTEM = "You check whether a passage from a document answers a question."
ASK = "Does the passage answer the question? Answer yes or no."
YES = ("yes", "Yes", " yes", " Yes", "YES")
NO = ("no", "No", " no", " No", "NO")
PASSAGE_CHARS = 700  # a passage is cut to this many characters
CONTEXT = 1024


def _first_tokens(llm: "Llama", words: Sequence[str]) -> list[int]:
    ids = {llm.tokenize(w.encode("utf-8"), add_bos=False, special=False)[0] for w in words}
    return sorted(ids)


class LlmJudge:
    """Scores (question, passage) pairs with an instruction model: positive when it
    would answer "yes". Calls are serialised (``Llama`` is not thread-safe)."""

    def __init__(self, model_path: Path, n_threads: int = 2, repack: Repack = "auto") -> None:
        from rag.answer.generation import ChatTemplate, llama_options

        path = Path(model_path).expanduser()
        if not path.is_file():
            raise ModelError(f"rerank model not found: {path} (fetch one with 'python -m models.fetch "
                             "qwen2.5-coder-1.5b-instruct-q4_k_m', or give any GGUF instruction model)")
        try:
            self._llm = load_llama(path, repack_here(repack).repack, **llama_options(CONTEXT, n_threads, 0))
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"cannot load the rerank model {path}: {exc}") from exc
        self._template = ChatTemplate(self._llm)
        self._yes = _first_tokens(self._llm, YES)
        self._no = _first_tokens(self._llm, NO)
        self._lock = threading.Lock()
        self.name = path.name

    def _tokens(self, question: str, passage: str) -> list[int]:
        messages = [{"role": "system", "content": SYSTEM},
                    {"role": "user", "content": f"Question: {question}\nPassage: {passage[:PASSAGE_CHARS]}\n{ASK}"}]
        tokens = self._template.tokens(messages + [{"role": "assistant", "content": ""}])
        if tokens is None:
            raise ModelError(f"the rerank model {self.name} has no chat template")
        return tokens

    def _score(self, tokens: list[int]) -> float:
        llm = self._llm
        cached = llm.input_ids[:llm.n_tokens].tolist()
        keep = 0
        for a, b in zip(cached, tokens[:-1]):  # the last token is always read again: its logits are needed
            if a != b:
                break
            keep += 1
        llm.n_tokens = keep
        llm.eval(tokens[keep:])
        logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))
        return float(np.max(logits[self._yes]) - np.max(logits[self._no]))

    def scores(self, question: str, passages: Sequence[str]) -> np.ndarray:
        with self._lock:
            return np.array([self._score(self._tokens(question, p)) for p in passages], dtype=np.float64)
