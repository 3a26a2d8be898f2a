"""Grammar-constrained greedy decoding: ``GreedyGrammar`` must choose exactly the
token llama.cpp's own grammar sampler followed by greedy sampling chooses."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from rag.answer.generation import ANSWER_GRAMMAR
from rag.answer.greedy_grammar import GreedyGrammar


@pytest.fixture(scope="module")
def llm() -> Iterator[object]:
    from models.manifest import default_model_path
    from rag.answer.llama_model import load_llama, repack_here

    yield load_llama(default_model_path(), repack_here("auto").repack, n_ctx=512, n_threads=2, verbose=False)


def _token(llm, text: str) -> int:
    ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
    assert len(ids) == 1, (text, ids)
    return ids[0]


def _reference(grammar: GreedyGrammar, scores: np.ndarray) -> int:
    """The grammar sampler over the whole vocabulary, then greedy."""
    ok = grammar.allowed(np.arange(len(scores)))
    return int(np.argmax(np.where(ok, scores, -np.inf)))


def test_best_allowed_token_is_chosen(llm) -> None:
    with GreedyGrammar(llm, ANSWER_GRAMMAR) as grammar:
        rng = np.random.default_rng(0)
        scores = rng.normal(size=llm.n_vocab()).astype(np.float32)
        the, space_the, bracket, newline = (_token(llm, t) for t in ("The", " The", "[", "\n"))
        scores[[bracket, newline, space_the, the]] = [13.0, 12.0, 11.0, 10.0]  # one leading space is allowed
        assert grammar.choose(scores) == space_the == _reference(grammar, scores)
        out = grammar(np.array([1, 2, 3]), scores)
        assert np.isfinite(out).sum() == 1 and out[space_the] == scores[space_the]
        grammar(np.array([1, 2, 3, space_the]), scores)  # accepts " The"; never a bracket nor a new line
        assert grammar.choose(scores) == space_the == _reference(grammar, scores)


def test_whole_vocabulary_is_searched_when_the_best_tokens_are_all_rejected(llm) -> None:
    with GreedyGrammar(llm, ANSWER_GRAMMAR, top=4) as grammar:
        scores = np.zeros(llm.n_vocab(), dtype=np.float32)
        banned = [_token(llm, t) for t in ("[", "]", "{", "}", "<", ">")]
        scores[banned] = 5.0
        scores[_token(llm, "Meta")] = 1.0
        assert grammar.choose(scores) == _token(llm, "Meta") == _reference(grammar, scores)


def test_replies_equal_the_gbnf_sampler(llm) -> None:
    from llama_cpp import LlamaGrammar

    from rag.answer.drafting import SYSTEM_PROMPT

    gbnf = LlamaGrammar.from_string(ANSWER_GRAMMAR, verbose=False)
    questions = [("Meta will allow US government agencies to use its Llama models, the company said Monday.",
                  "Which company will let US agencies use its models?"),
                 ("As of August, the software has been downloaded more than 350 million times.",
                  "How many times has the software been downloaded?")]
    for evidence, question in questions:
        messages = [{"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": f"Evidence: {evidence}\nQuestion: {question}"}]

        def reply(**constraint: object) -> str:
            llm.reset()
            out = llm.create_chat_completion(messages, temperature=0.0, max_tokens=32, **constraint)
            return out["choices"][0]["message"]["content"]

        with GreedyGrammar(llm, ANSWER_GRAMMAR) as fast:
            assert reply(logits_processor=fast.processor()) == reply(grammar=gbnf)


def test_chat_template_tokens_are_the_models_template_and_the_prefill(llm) -> None:
    from rag.answer.drafting import ANSWER_PREFILL, SYSTEM_PROMPT
    from rag.answer.generation import ChatTemplate

    messages = [{"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": "Evidence: Nick Clegg leads global affairs at Meta.\nQuestion: Who is Clegg?"}]
    template = ChatTemplate(llm)
    plain = template.tokens(messages)
    assert plain is not None
    llm.reset()
    via_chat = llm.create_chat_completion(messages, temperature=0.0, max_tokens=16)["choices"][0]["message"]["content"]
    llm.reset()
    assert llm.create_completion(plain, temperature=0.0, max_tokens=16)["choices"][0]["text"] == via_chat
    prefilled = template.tokens([*messages, {"role": "assistant", "content": ANSWER_PREFILL}])
    assert prefilled[:len(plain)] == plain
    assert llm.detokenize(prefilled[len(plain):]).decode() == ANSWER_PREFILL


def test_an_invalid_grammar_is_an_error(llm) -> None:
    with pytest.raises(ValueError):
        GreedyGrammar(llm, "root ::= [")
