"""A GBNF grammar for greedy decoding that asks the grammar about the best
tokens only.

llama.cpp's grammar sampler tests every token of the vocabulary against the
grammar at every step; for SmolLM2's 49k tokens that costs more on two cores than
the model's own decode step. Greedy decoding needs only the highest-scoring token
the grammar allows, so this asks the same llama.cpp grammar sampler about the
``top`` best tokens (ties included) and, only if it rejects all of them, about
the whole vocabulary. The token chosen is the one llama.cpp's grammar sampler
followed by its greedy sampler would choose (highest score, lowest id on ties);
llama.cpp's ``common_sampler`` saves time the same way."""

from __future__ import annotations

import ctypes
import logging
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from llama_cpp import Llama, LogitsProcessorList

log = logging.getLogger(__name__)


class GreedyGrammar:
    """One reply's grammar state, as a llama-cpp-python logits processor: each
    call accepts the token chosen at the previous step, then leaves only the best
    allowed token with a finite score. Use it as a context manager (or call
    ``close``) so the llama.cpp sampler is freed when the reply ends."""

    def __init__(self, llm: "Llama", grammar: str, root: str = "root", top: int = 16) -> None:
        import llama_cpp

        self._api = llama_cpp
        self._sampler = None
        self._sampler = llama_cpp.llama_sampler_init_grammar(llm._model.vocab, grammar.encode("utf-8"),
                                                             root.encode("utf-8"))
        if not self._sampler:
            raise ValueError("invalid grammar")
        self._top = top
        self._steps = 0

    def allowed(self, ids: np.ndarray) -> np.ndarray:
        """Which of ``ids`` the grammar allows next (a boolean per id)."""
        data = (self._api.llama_token_data * len(ids))()
        for slot, token in zip(data, ids):
            slot.id = int(token)
        cur = self._api.llama_token_data_array(data=data, size=len(ids), selected=-1, sorted=False)
        self._api.llama_sampler_apply(self._sampler, ctypes.byref(cur))
        return np.fromiter((np.isfinite(slot.logit) for slot in data), dtype=bool, count=len(ids))

    def choose(self, scores: np.ndarray) -> int:
        """The highest-scoring allowed token (the lowest id among equal scores)."""
        top = min(self._top, len(scores))
        kth = np.partition(scores, -top)[-top]
        ids = np.nonzero(scores >= kth)[0]
        ids = ids[np.argsort(-scores[ids], kind="stable")]
        ok = self.allowed(ids)
        if not ok.any():
            log.debug("grammar rejected the %d best tokens; checking the whole vocabulary", len(ids))
            ids = np.argsort(-scores, kind="stable")
            ok = self.allowed(ids)
            if not ok.any():
                raise RuntimeError("the grammar allows no token")
        return int(ids[np.argmax(ok)])

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if self._steps:
            self._api.llama_sampler_accept(self._sampler, int(input_ids[-1]))
        self._steps += 1
        token = self.choose(scores)
        out = np.full_like(scores, -np.inf)
        out[token] = scores[token]
        return out

    def processor(self) -> "LogitsProcessorList":
        from llama_cpp import LogitsProcessorList

        return LogitsProcessorList([self])

    def __enter__(self) -> "GreedyGrammar":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._sampler:
            self._api.llama_sampler_free(self._sampler)
            self._sampler = None

    def __del__(self) -> None:
        self.close()
