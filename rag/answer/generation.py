"""Text generators behind a small protocol: llama.cpp in process (default), or any
OpenAI-compatible completion server (``RAG_LLM_URL``)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from rag.errors import BackendError, ModelError
from rag.answer.greedy_grammar import GreedyGrammar
from rag.answer.llama_model import Repack, RepackChoice, load_llama, repack_here

if TYPE_CHECKING:
    from llama_cpp import Llama

log = logging.getLogger(__name__)

# Answers are plain prose: the model may not write brackets (markers are added by
# the pipeline, so they can only name evidence that was shown) nor new lines. A
# leading space is allowed: a reply that continues a prefill starts with one.
ANSWER_GRAMMAR = r"""
root ::= " "? first rest
first ::= [^\[\]\n\r \t<>{}|]
rest ::= [^\[\]\n\r<>{}|]*
"""


def llama_options(n_ctx: int, n_threads: int, n_gpu_layers: int) -> dict[str, object]:
    """Keyword arguments for ``llama_cpp.Llama``; bench/answer.py builds its raw
    reference with the same ones."""
    return {"n_ctx": n_ctx, "n_threads": n_threads, "n_gpu_layers": n_gpu_layers, "verbose": False}


def split_prefill(messages: list[dict[str, str]]) -> tuple[list[dict[str, str]], str]:
    """The messages before a last ``assistant`` message, and that message's text:
    a prefill the reply continues ("" when the last message is not the assistant's)."""
    if messages and messages[-1]["role"] == "assistant":
        return messages[:-1], messages[-1]["content"]
    return messages, ""


class ChatTemplate:
    """The model's own chat template (from the GGUF file), compiled once."""

    def __init__(self, llm: "Llama") -> None:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self._llm = llm
        template = llm.metadata.get("tokenizer.chat_template")
        eos, bos = llm.token_eos(), llm.token_bos()
        self._formatter = Jinja2ChatFormatter(
            template, llm._model.token_get_text(eos) if eos != -1 else "",
            llm._model.token_get_text(bos) if bos != -1 else "") if template else None

    def tokens(self, messages: list[dict[str, str]]) -> list[int] | None:
        """The tokens of ``messages``; a last ``assistant`` message is a prefill
        (``split_prefill``). None when the model file carries no chat template."""
        if self._formatter is None:
            return None
        head, prefill = split_prefill(messages)
        result = self._formatter(messages=head)
        return self._llm.tokenize((result.prompt + prefill).encode("utf-8"), add_bos=not result.added_special,
                                  special=True)


class Generator(Protocol):
    name: str
    tokens_generated: int  # running total, for metrics

    def stream(self, messages: list[dict[str, str]], max_tokens: int,
               grammar: str | None = None) -> Iterator[str]:
        """Yield pieces of the reply as they are produced (temperature 0). A last
        ``assistant`` message is a prefill the reply continues, where the backend
        supports it."""
        ...


class LlamaCppGenerator:
    """llama-cpp-python in process. ``Llama`` is not thread-safe: calls are
    serialised here. The KV cache keeps the longest common token prefix between
    calls, so the fixed system prompt is evaluated once. Grammars are checked on
    the best tokens only (``rag.answer.greedy_grammar``): decoding is greedy."""

    def __init__(self, model_path: Path, n_ctx: int = 2048, n_threads: int = 2, n_gpu_layers: int = 0,
                 repack: Repack = "auto") -> None:
        """``repack``: llama.cpp's weight repacking (``rag.answer.llama_model``; auto: off on AMX CPUs)."""
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise ModelError(f"model file not found: {path} (fetch the default with 'python -m models.fetch', "
                             f"or pass --model / RAG_MODEL_PATH)")
        try:
            import llama_cpp  # noqa: F401
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ModelError(f"llama-cpp-python is not installed ({exc})") from exc
        self.repack: RepackChoice = repack_here(repack)
        log.info("loading %s: %s", path.name, self.repack.describe())
        try:
            self._llm = load_llama(path, self.repack.repack, **llama_options(n_ctx, n_threads, n_gpu_layers))
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"cannot load model {path}: {exc}") from exc
        self._template = ChatTemplate(self._llm)
        self.name = path.name
        self.n_ctx = n_ctx
        self.lock = threading.Lock()
        self.tokens_generated = 0

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def prefill(self, variants: list[list[dict[str, str]]]) -> int:
        """Evaluate now the prompt tokens that ``variants`` (the same prompt with
        different contents) all start with: the next ``stream`` of such a prompt
        evaluates only the rest (llama-cpp-python keeps the longest common prefix).
        Returns the number of tokens evaluated."""
        prompts = [self._template.tokens(m) for m in variants]
        if not prompts or any(p is None for p in prompts):
            return 0
        n = 0
        for column in zip(*prompts):
            if len(set(column)) > 1:
                break
            n += 1
        if n:
            with self.lock:
                self._llm.eval(prompts[0][:n])
        return n

    def stream(self, messages: list[dict[str, str]], max_tokens: int,
               grammar: str | None = None) -> Iterator[str]:
        with self.lock, (GreedyGrammar(self._llm, grammar) if grammar else nullcontext()) as constraint:
            processor = constraint.processor() if constraint else None
            prompt = self._template.tokens(messages)
            if prompt is None:  # no template in the file: llama-cpp-python's default chat format
                head, _ = split_prefill(messages)
                chunks = self._llm.create_chat_completion(head, temperature=0.0, max_tokens=max_tokens,
                                                          stream=True, logits_processor=processor)
                pieces = (c["choices"][0]["delta"].get("content") for c in chunks)  # type: ignore[index]
            else:
                completion = self._llm.create_completion(prompt, temperature=0.0, max_tokens=max_tokens,
                                                         stream=True, logits_processor=processor)
                pieces = (c["choices"][0]["text"] for c in completion)  # type: ignore[index]
            for piece in pieces:
                if piece:
                    self.tokens_generated += 1
                    yield piece


class OpenAIServerGenerator:
    """Any OpenAI-compatible ``/v1/chat/completions`` server (llama.cpp's
    ``llama-server``, ``python -m llama_cpp.server``, vLLM). The grammar is passed
    through as ``grammar`` (llama.cpp servers honour it; others ignore it); the
    pipeline verifies citations on our side whatever comes back. Thread-safe: with
    a server that has parallel slots, several answers may stream at once."""

    def __init__(self, base_url: str, model: str | None = None, timeout: float = 60.0,
                 transport: object | None = None) -> None:
        """``model``: the name to send (default: the first the server lists);
        ``transport``: an ``httpx.BaseTransport`` to use instead of the network (tests)."""
        import httpx

        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout,
                                    transport=transport)  # type: ignore[arg-type]
        self._model = model or self._first_model()
        self.name = self._model
        self.tokens_generated = 0

    def _first_model(self) -> str:
        """The first model the server lists (vLLM insists on its name; llama.cpp servers take any)."""
        import httpx

        try:
            resp = self._client.get("/models")
        except httpx.HTTPError as exc:
            raise BackendError(f"cannot reach the LLM server at {self.base_url}: {exc or type(exc).__name__}") from exc
        try:
            return str(resp.json()["data"][0]["id"])
        except (ValueError, KeyError, IndexError, TypeError):
            log.warning("the LLM server at %s lists no models (%s); sending model 'default'",
                        self.base_url, resp.status_code)
            return "default"

    def stream(self, messages: list[dict[str, str]], max_tokens: int,
               grammar: str | None = None) -> Iterator[str]:
        import httpx

        # servers disagree on a last assistant message (llama-server continues it,
        # others start a new turn after it): no prefill; fillers are cut on our side
        messages, _ = split_prefill(messages)
        body: dict[str, object] = {"model": self._model, "messages": messages, "temperature": 0.0,
                                   "max_tokens": max_tokens, "stream": True}
        if grammar:
            body["grammar"] = grammar
        try:
            with self._client.stream("POST", "/chat/completions", json=body) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise BackendError(f"the LLM server answered {resp.status_code}: {resp.text[:200]}")
                for line in resp.iter_lines():
                    piece = self._piece(line)
                    if piece is None:
                        return
                    if piece:
                        self.tokens_generated += 1
                        yield piece
        except httpx.HTTPError as exc:
            raise BackendError(f"cannot reach the LLM server at {self.base_url}: {exc or type(exc).__name__}") from exc

    @staticmethod
    def _piece(line: str) -> str | None:
        """The text in one Server-Sent Events line of a chat completion stream: ""
        for lines without text, ``None`` at the end of the stream."""
        import json

        if not line.startswith("data:"):
            return ""
        data = line[5:].strip()
        if data == "[DONE]":
            return None
        try:
            obj = json.loads(data)
        except ValueError as exc:
            raise BackendError(f"the LLM server sent something other than JSON: {data[:200]}") from exc
        if not isinstance(obj, dict) or "error" in obj:
            detail = obj.get("error") if isinstance(obj, dict) else obj
            raise BackendError(f"the LLM server failed: {str(detail)[:200]}")
        choices = obj.get("choices") or [{}]
        content = (choices[0].get("delta") or {}).get("content")
        return content if isinstance(content, str) else ""
