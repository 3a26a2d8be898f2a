"""``Rag``: the parts wired together from one ``Settings``. The CLI and the HTTP
server are thin layers over this object. Heavy parts (embedder, LLM) load lazily,
once, on first use (the server forces them in its lifespan)."""

from __future__ import annotations

import logging
import threading
from functools import cached_property
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

# Parts are imported where they are made: ``rag ask`` starts loading the LLM before
# NumPy and the retrieval modules are imported (bench/startup.py).
if TYPE_CHECKING:
    from rag.index.embeddings import Embedder
    from rag.index.lexical import LexicalCache
    from rag.answer.retrieval import HybridRetriever, SearchResult
    from rag.settings import Settings
    from rag.index.store import VectorStore
    from rag.ingest.ingestor import Ingestor
    from rag.answer.pipeline import AnswerPipeline, Turn
    from rag.answer.llm_judge import LlmJudge
    from rag.answer.ranker import Ranker
    from rag.answer.selection import UnitRanker
    from rag.answer.generation import Generator
    from rag.threads import Background
    from rag.types import Answer, StreamEvent

log = logging.getLogger(__name__)


class Rag:
    def __init__(self, settings: "Settings", embedder: "Embedder | None" = None,
                 store: "VectorStore | None" = None, generator: "Generator | None" = None) -> None:
        """``embedder``, ``store`` and ``generator``: already-made parts to use (and share
        between engines) instead of making them from ``settings``."""
        self.settings = settings
        self._embedder = embedder
        self._store = store
        self._lock = threading.Lock()  # making the embedder and the store
        self._llm_lock = threading.Lock()  # making the generator (in a thread of its own: see load)
        self._loading_generator: "Background | None" = None
        if generator is not None:
            self.__dict__["generator"] = generator  # what the cached property would hold once loaded

    @cached_property
    def lexical(self) -> "LexicalCache":
        from rag.index.lexical import LexicalCache

        return LexicalCache()

    @property
    def embedder(self) -> "Embedder":
        with self._lock:
            if self._embedder is None:
                from rag.index.embeddings import load_embedder

                log.info("loading embedder %s", self.settings.embed_model)
                self._embedder = load_embedder(self.settings.embed_model, self.settings.cache_dir,
                                               onnx=self.settings.embed_onnx,
                                               quantized=self.settings.embed_quantized,
                                               device=self.settings.embed_device)
            return self._embedder

    @property
    def store(self) -> "VectorStore":
        with self._lock:
            if self._store is None:
                from rag.index.store import ChromaStore

                self._store = ChromaStore(Path(self.settings.data_dir), self.settings.collection,
                                          self.settings.chroma_url)
            return self._store

    @cached_property
    def retriever(self) -> "HybridRetriever":
        from rag.answer.retrieval import HybridRetriever

        return HybridRetriever(self.store, self.embedder, self.lexical)

    @cached_property
    def ingestor(self) -> "Ingestor":
        from rag.ingest.ingestor import Ingestor  # not on the question path (its parsers take a while to import)
        from rag.ingest.parsers.ocr import OcrOptions

        s = self.settings
        return Ingestor(self.store, lambda: self.embedder, s.chunk_chars, on_change=self.lexical.invalidate,
                        ocr=OcrOptions(Path(s.cache_dir), s.ocr_lang, s.ocr_dpi, s.ocr_tesseract))

    @cached_property
    def generator(self) -> "Generator":
        if self._loading_generator is not None:  # started by load(wait=False)
            return self._loading_generator.result()
        return self._make_generator()

    def _ready_generator(self) -> "Generator":
        """The generator, with the fixed start of every prompt already read."""
        from rag.answer.drafting import prefill_prompt

        generator = self._make_generator()
        prefill_prompt(generator)
        return generator

    def _make_generator(self) -> "Generator":
        from rag.answer.generation import LlamaCppGenerator, OpenAIServerGenerator

        with self._llm_lock:
            if self.settings.llm_url:
                log.info("using the LLM server at %s", self.settings.llm_url)
                return OpenAIServerGenerator(self.settings.llm_url, self.settings.llm_model,
                                             timeout=self.settings.request_timeout)
            from rag.answer.model_check import ensure_checked

            ensure_checked(self.settings)  # once per model and machine: a crash is one line, not this process's end
            return LlamaCppGenerator(self.settings.model_path, n_ctx=self.settings.ctx,
                                     n_threads=self.settings.n_threads, n_gpu_layers=self.settings.n_gpu_layers,
                                     repack=self.settings.llm_repack)

    @property
    def model_name(self) -> str:
        if self.settings.llm_url:  # the name the LLM server goes by (asked once)
            return self.generator.name if self.settings.use_llm else self.settings.llm_url
        return Path(self.settings.model_path).name

    @cached_property
    def ranker(self) -> "Ranker | None":
        """The learned evidence ranker (``rag.answer.ranker``); None with ``RAG_RANKER=false``."""
        if not self.settings.ranker:
            return None
        from rag.answer.ranker import default_files, load_ranker

        return load_ranker(default_files())

    @cached_property
    def judge(self) -> "LlmJudge | None":
        """The accurate mode's judge (``rag.answer.llm_judge``), when ``RAG_RERANK_MODEL`` names a model."""
        if self.settings.rerank_model is None:
            return None
        from rag.answer.llm_judge import LlmJudge

        return LlmJudge(self.settings.rerank_model, n_threads=self.settings.n_threads, repack=self.settings.llm_repack)

    def readers(self) -> "dict[str, UnitRanker]":
        """The readers of units the selection policy's stages use, by signal."""
        from rag.answer.selection import JUDGE, RANKER

        return {name: reader for name, reader in ((RANKER, self.ranker), (JUDGE, self.judge)) if reader is not None}

    def policy_file(self) -> Path:
        """``RAG_POLICY``, else the shipped policy for the readers configured."""
        from rag.answer.selection import JUDGED_POLICY_FILE, POLICY_FILE, SIGNALS_POLICY_FILE

        if self.settings.policy:
            return Path(self.settings.policy)
        if self.settings.rerank_model is not None and self.settings.ranker:
            if not JUDGED_POLICY_FILE.is_file():
                from rag.errors import ModelError

                raise ModelError(f"the accurate mode (RAG_RERANK_MODEL) has no fitted policy ({JUDGED_POLICY_FILE.name}): "
                                 "make it with eval/train/label_judge.py and eval/fit_policy.py --judged")
            return JUDGED_POLICY_FILE
        return POLICY_FILE if self.settings.ranker else SIGNALS_POLICY_FILE

    @cached_property
    def pipeline(self) -> "AnswerPipeline":
        from rag.answer.pipeline import AnswerPipeline
        from rag.errors import ModelError
        from rag.answer.selection import JUDGE, RANKER, SelectionPolicy

        gen = (lambda: self.generator) if self.settings.use_llm else None
        path = self.policy_file()
        policy = SelectionPolicy.load(path)
        if policy.uses(RANKER) and not self.settings.ranker:
            raise ModelError(f"the selection policy {path} weighs the learned ranker's score: "
                             "set RAG_RANKER=true, or give a policy fitted without it")
        if policy.uses(JUDGE) and self.settings.rerank_model is None:
            raise ModelError(f"the selection policy {path} weighs a rerank model's judgement: "
                             "set RAG_RERANK_MODEL (--rerank-model), or give a policy fitted without it")
        if self.settings.rerank_model is not None and not self.settings.ranker:
            raise ModelError("the rerank model (RAG_RERANK_MODEL) reads what the learned ranker ranks best: "
                             "it needs RAG_RANKER=true")
        return AnswerPipeline(self.retriever, policy, gen, self.model_name,
                              max_tokens=self.settings.max_answer_tokens,
                              max_question_chars=self.settings.max_question_chars,
                              readers=self.readers if policy.stages else None)

    def close(self) -> None:
        """Release the index's files (the server calls this when it stops)."""
        if self._store is not None and hasattr(self._store, "close"):
            self._store.close()

    def check_backends(self) -> None:
        """Open the index (connect to the Chroma server, if one is configured) and
        the LLM server now, so that an unreachable server or a damaged index is one
        clear ``BackendError`` before any model loads."""
        self.store.version()
        if self.settings.llm_url and self.settings.use_llm:
            _ = self.generator
        elif self.settings.use_llm:
            from rag.answer.model_check import ensure_checked

            ensure_checked(self.settings)

    def decode_once(self) -> float:
        """Have the model generate one token now (the server is ready only after
        this); returns the seconds it took. The prompt is the fixed start of every
        drafting prompt, so what ``load`` read ahead stays in the model's cache."""
        import time

        from rag.answer.drafting import build_messages

        t0 = time.perf_counter()
        if self.settings.use_llm:
            for _ in self.generator.stream(build_messages("?", ["1"]), max_tokens=1):
                pass
        return time.perf_counter() - t0

    def load(self, wait: bool = True) -> None:
        """Load every model now (the server calls this in its lifespan). The LLM loads
        in a thread meanwhile (llama.cpp does not hold the GIL while it reads the
        model); with ``wait=False`` it goes on loading while questions are searched,
        and the first draft waits for it (``rag ask``: one question per process)."""
        if self.settings.use_llm and "generator" not in self.__dict__ and self._loading_generator is None:
            from rag.threads import Background

            self._loading_generator = Background(self._ready_generator, "rag-load-llm")
        _ = self.embedder, self.store
        if wait and self.settings.use_llm:
            _ = self.generator

    def settle(self) -> None:
        """Wait for the LLM if it is still loading in a thread (``load(wait=False)``),
        before printing: llama-cpp-python points the process's stdout and stderr (their
        file descriptors, and ``sys.stdout``/``sys.stderr``) at /dev/null while it
        loads a model, so a line printed meanwhile is lost (seen: ``rag ask``'s
        abstention, ready before the model it did not need, printed nothing about one
        time in four). A failed load is not this answer's concern: the model's next
        use reports it."""
        if self._loading_generator is not None:
            try:
                self._loading_generator.result()
            except Exception:  # noqa: BLE001 - reported where the model is used
                log.debug("the LLM did not load", exc_info=True)

    def resolve_sources(self, patterns: Sequence[str] | None) -> frozenset[str] | None:
        """The document ids that ``patterns`` (ids or id prefixes) name; None for
        all documents. NotFoundError names a pattern that matches no document."""
        if not patterns:
            return None
        from rag.errors import NotFoundError

        ids = [d.source for d in self.ingestor.documents()]
        chosen: set[str] = set()
        for pattern in patterns:
            found = {s for s in ids if s.startswith(pattern)}
            if not found:
                raise NotFoundError(f"no document {pattern!r} in the index (ids and id prefixes as "
                                    "'rag list' shows them)")
            chosen |= found
        return frozenset(chosen)

    def ask(self, question: str, k: int | None = None, history: "Sequence[Turn]" = (),
            sources: Sequence[str] | None = None, instructions: str = "") -> "Answer":
        return self.pipeline.ask(question, k or self.settings.top_k, history, self.resolve_sources(sources),
                                 instructions)

    def ask_stream(self, question: str, k: int | None = None, history: "Sequence[Turn]" = (),
                   sources: Sequence[str] | None = None, instructions: str = "") -> "Iterator[StreamEvent]":
        return self.pipeline.stream(question, k or self.settings.top_k, history, self.resolve_sources(sources),
                                    instructions)

    def search(self, query: str, k: int | None = None, sources: Sequence[str] | None = None) -> "SearchResult":
        from rag.errors import EmptyQuestionError

        if not query.strip():
            raise EmptyQuestionError("the query is empty")
        return self.retriever.search(query.strip(), k or self.settings.top_k,
                                     sources=self.resolve_sources(sources))
