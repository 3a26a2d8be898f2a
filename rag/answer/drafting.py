"""Drafting and verification: the model phrases an answer from the evidence,
and the draft is kept only if it says nothing the evidence does not.

The model writes under a GBNF grammar that forbids brackets and new lines (so
only the pipeline adds ``[n]`` markers). Its words are checked as they stream
(every content word must come from the evidence or the question; the draft stops
at the first one that does not). ``rag.answer.pipeline.Composer`` then keeps its whole
sentences that hold and completes them with the evidence: the names, numbers
and code tokens (``key_terms``, ``code_terms``) the draft left out come in the
cited units themselves."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from rag.answer.generation import ANSWER_GRAMMAR, Generator
from rag.text import tokens, words

SYSTEM_PROMPT = ("You answer questions from the evidence only. Reply with one short, complete sentence that "
                 "uses the words of the evidence. Do not add anything that is not in the evidence.")
ANSWER_PREFILL = "The answer is:"
# Lead-ins the model likes to write; cut from a draft, longest first.
_FILLER_STARTS = ("the answer is", "answer", "according to the evidence", "based on the evidence",
                  "the evidence says that", "the evidence states that", "the evidence shows that",
                  "the evidence says", "the evidence states", "the evidence shows")
_FILLER = re.compile(r"^\s*(?:" + "|".join(re.escape(f).replace(r"\ ", r"\s+") for f in _FILLER_STARTS)
                     + r")\s*[:,]?\s*", re.I)
_SCALE = re.compile(r"(?:hundred|thousand|million|billion|trillion|percent|dozen)s?")

# identifiers, options and macros a draft must copy exactly: a.b, a_b, f(), -x/--xx, \\cmd
_CODE_TOKEN = re.compile(r"\\[A-Za-z@:_]+|[A-Za-z_@][\w@]*(?:[._:][\w@]+)+(?:\(\))?|[A-Za-z_]\w*\(\)|"
                         r"(?<![\w-])--?[a-z][\w-]+")
WHOLE = re.compile(r"[.!?][\"'”’)\]]*$")


def key_terms(evidence: str, question: str) -> set[str]:
    """Names and numbers of the evidence the question does not already give."""
    q = set(tokens(question))
    keys: set[str] = set()
    ws = words(evidence)
    for i, w in enumerate(ws):
        if (w[:1].isupper() and i > 0) or any(ch.isdigit() for ch in w) or _SCALE.fullmatch(w.lower()):
            keys.update(t for t in tokens(w) if t not in q)
    return keys


def supported_word(word: str, allowed: set[str]) -> bool:
    return all(t in allowed for t in tokens(word))


def code_terms(evidence: str, question: str) -> set[str]:
    """Code-like tokens of the evidence the question does not already give."""
    return {m.group() for m in _CODE_TOKEN.finditer(evidence) if m.group() not in question}


def _may_start_filler(text: str) -> bool:
    """True while ``text`` could still grow into a filler prefix that must be cut
    (so only a first word like "The" or "According" is held back). The last word
    may still grow unless ``text`` ends with a space."""
    ws = [w.strip(":,").lower() for w in text.split()]
    if not ws:
        return True
    n = len(ws)
    for filler in _FILLER_STARTS:
        fw = filler.split()
        if text[-1].isspace():
            if fw[:n] == ws and n < len(fw):
                return True
        elif n <= len(fw) and fw[:n - 1] == ws[:-1] and fw[n - 1].startswith(ws[-1]):
            return True
    return False


def _release(pending: str) -> str | None:
    """The first text to stream from the reply so far, ``pending`` (its last word
    may be incomplete): None while it may still grow into a filler, or is nothing
    but a filler (so the first text streamed is always a word of the answer)."""
    if _may_start_filler(pending):
        return None
    out = clean_draft(pending)
    if not out:
        return None
    return out + (" " if pending[-1].isspace() else "")


def clean_draft(text: str) -> str:
    text = _FILLER.sub("", text.strip()).strip().strip('"“”')
    text = re.sub(r"\s+", " ", text)
    if text and text[0].islower():
        text = text[0].upper() + text[1:]
    return text


def build_messages(question: str, evidence: Sequence[str], instructions: str = "") -> list[dict[str, str]]:
    """The system prompt (the caller's ``instructions`` after it), the evidence and
    question, and a prefill that starts the reply at the answer itself (no lead-in
    to strip, so its first word can stream)."""
    ev = "\n".join(" ".join(e.split()) for e in evidence)
    system = f"{SYSTEM_PROMPT}\n{instructions.strip()}" if instructions.strip() else SYSTEM_PROMPT
    return [{"role": "system", "content": system},
            {"role": "user", "content": f"Evidence: {ev}\nQuestion: {question}"},
            {"role": "assistant", "content": ANSWER_PREFILL}]


def prefill_prompt(generator: Generator) -> None:
    """Have the model read the part of every drafting prompt that never changes
    (chat template, system prompt, the start of the evidence) ahead of the first
    question, where the backend can (a model in this process)."""
    prefill = getattr(generator, "prefill", None)
    if prefill is not None:
        prefill([build_messages("?", ["1"]), build_messages("!", ["2"])])


class Drafter:
    """Streams a model's draft of one answer from given evidence texts."""

    def __init__(self, generator: Generator, max_tokens: int = 64) -> None:
        self.generator = generator
        self.max_tokens = max_tokens

    def stream(self, question: str, evidence: Sequence[str], streamed: list[str],
               instructions: str = "") -> Iterator[str]:
        """Stream the model's reply as it comes, once it cannot be a filler any
        more; stop at the first complete word the evidence does not support, and
        empty ``streamed`` then (the caller keeps only the whole sentences before
        that word, and the consumer shows the final answer in place of what was
        streamed)."""
        allowed = set(tokens(" ".join(evidence))) | set(tokens(question))
        reply = ""
        buf = ""  # the last word, which may still grow
        held = True  # hold the first words back until a filler prefix can be stripped
        pieces = self.generator.stream(build_messages(question, evidence, instructions), self.max_tokens,
                                       ANSWER_GRAMMAR)
        try:
            for piece in pieces:
                reply += piece
                parts = re.split(r"(\s+)", buf + piece)
                complete, buf = "".join(parts[:-1]), parts[-1]
                if held:  # the words of a filler need no support: check what is left once it is cut
                    out = _release(reply)
                    if out is None:
                        continue
                    held = False
                    complete = out[:len(out) - len(buf)]
                else:
                    out = piece
                if not all(supported_word(w, allowed) for w in complete.split()):
                    streamed.clear()
                    return
                streamed.append(out)
                yield out
            last = clean_draft(reply) if held else buf
            if not all(supported_word(w, allowed) for w in last.split()):
                streamed.clear()
                return
            if held:
                streamed[:] = [last]
                if last:
                    yield last
        finally:
            close = getattr(pieces, "close", None)
            if close:
                close()
