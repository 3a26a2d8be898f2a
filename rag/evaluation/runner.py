"""Running the dataset's questions: through two plain callables (in-process) or a
running server (``POST /v1/ask``, ``GET /v1/search``; conversations through
``POST /v1/chat/completions``), plus the optional NLI judge.

The harness never touches engine internals: ``ask(question, k)`` returns the
answer object (``Answer.to_dict()``), ``search(question, k)`` the search object
(``{"query", "results": [{"source", "text", ...}]}``). For a conversation the
earlier turns are asked first and ``ask(question, k, history)`` gets them with
their answers: ``history`` is ``[(question, answer object), ...]``, oldest first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from rag.errors import BackendError, ModelError
from rag.evaluation.dataset import EvalItem
from rag.evaluation.scorer import Passage, QuestionScore, score_question, strip_markers
from rag.types import Answer, Citation, Timings

if TYPE_CHECKING:
    from rag.answer.followup import Turn

log = logging.getLogger(__name__)

AskFn = Callable[..., Mapping[str, Any]]  # (question, k[, history])
History = Sequence[tuple[str, Mapping[str, Any]]]
SearchFn = Callable[[str, int], Mapping[str, Any]]
ProgressFn = Callable[[int, int], None]
NliJudge = Callable[[str, str], bool]
"""``judge(premise, hypothesis)`` -> whether the premise entails the hypothesis."""


@dataclass(frozen=True)
class QuestionRun:
    """One question, the answer it got and (when searched) its top-k passages."""

    item: EvalItem
    answer: Answer
    retrieved: tuple[Passage, ...] | None = None


def _require(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    if key not in obj:
        raise BackendError(f"malformed {what}: missing '{key}'")
    value = obj[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise BackendError(f"malformed {what}: '{key}' has the wrong type ({type(value).__name__})")
    return value


def _page(value: object) -> int | None:
    """A citation's page: a positive int, else ``None`` (older servers send none)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def answer_from_dict(obj: Mapping[str, Any]) -> Answer:
    """Parse the answer object (``Answer.to_dict()`` / ``POST /v1/ask``); ``BackendError`` if malformed."""
    if not isinstance(obj, Mapping):
        raise BackendError(f"malformed answer: expected an object, got {type(obj).__name__}")
    what = "answer"
    citations = []
    for c in _require(obj, "citations", list, what):
        if not isinstance(c, Mapping):
            raise BackendError("malformed answer: a citation is not an object")
        citations.append(Citation(
            marker=_require(c, "marker", int, "citation"), source=_require(c, "source", str, "citation"),
            chunk_id=str(c.get("chunk_id", "")), start=int(c.get("start", 0)), end=int(c.get("end", 0)),
            text=_require(c, "text", str, "citation"), score=float(c.get("score", 0.0)),
            section=str(c.get("section") or ""), page=_page(c.get("page")), ocr=c.get("ocr") is True))
    t = obj.get("timings") or {}
    if not isinstance(t, Mapping):
        raise BackendError("malformed answer: 'timings' is not an object")
    timings = Timings(**{name: float(t.get(name, 0.0)) for name in ("retrieval_ms", "ttft_ms", "total_ms")})
    return Answer(question=str(obj.get("question", "")), answer=_require(obj, "answer", str, what),
                  abstained=_require(obj, "abstained", bool, what), citations=citations, timings=timings,
                  model=str(obj.get("model", "")))


def passages_from_search(obj: Mapping[str, Any]) -> tuple[Passage, ...]:
    """Parse the search object (``GET /v1/search``); ``BackendError`` if malformed."""
    if not isinstance(obj, Mapping):
        raise BackendError(f"malformed search result: expected an object, got {type(obj).__name__}")
    hits = _require(obj, "results", list, "search result")
    out = []
    for hit in hits:
        if not isinstance(hit, Mapping):
            raise BackendError("malformed search result: a result is not an object")
        out.append(Passage(source=_require(hit, "source", str, "search hit"),
                           text=_require(hit, "text", str, "search hit")))
    return tuple(out)


def run_questions(items: Sequence[EvalItem], ask: AskFn, search: SearchFn | None = None, k: int = 5,
                  progress: ProgressFn | None = None) -> list[QuestionRun]:
    """Ask every question (sequentially, so latencies are comparable); search too when given."""
    runs = []
    if progress:
        progress(0, len(items))
    for done, item in enumerate(items, 1):
        log.debug("asking %s: %s", item.id, item.question)
        answer = answer_from_dict(ask_in_turn(ask, item, k))
        retrieved = passages_from_search(search(item.question, k))[:k] if search else None
        runs.append(QuestionRun(item=item, answer=answer, retrieved=retrieved))
        if progress:
            progress(done, len(items))
    return runs


def ask_in_turn(ask: AskFn, item: EvalItem, k: int) -> Mapping[str, Any]:
    """The answer to ``item``: a conversation's earlier turns are asked first, each
    with the turns before it, and their answers kept as history."""
    if not item.history:
        return ask(item.question, k)
    history: list[tuple[str, Mapping[str, Any]]] = []
    for turn in item.history:
        history.append((turn, ask(turn, k, tuple(history))))
    return ask(item.question, k, tuple(history))


def chat_turns(history: History) -> list["Turn"]:
    """``history`` as the answer pipeline's turns (what ``rag chat`` keeps)."""
    from rag.answer.followup import Turn

    return [Turn(q, str(a.get("answer", "")), str(a.get("standalone_question") or "")) for q, a in history]


class HttpBackend:
    """``ask``/``search`` callables against a running ``rag`` server."""

    def __init__(self, url: str, timeout: float = 600.0, api_key: str | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise BackendError(f"not an http(s) URL: {url!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(base_url=self.url, headers=headers, transport=transport,
                                    timeout=httpx.Timeout(timeout, connect=10.0))

    def __enter__(self) -> HttpBackend:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        where = f"{self.url}{path}"
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise BackendError(f"no answer from {where} within {self.timeout:g} s") from None
        except httpx.TransportError as exc:
            raise BackendError(f"cannot reach the server at {self.url} ({exc or type(exc).__name__})") from None
        if response.status_code != 200:
            raise BackendError(f"{method} {where} answered HTTP {response.status_code}: {_error_text(response)}")
        try:
            body = response.json()
        except ValueError:
            raise BackendError(f"{method} {where} did not return JSON") from None
        if not isinstance(body, dict):
            raise BackendError(f"{method} {where} returned {type(body).__name__}, not an object")
        return body

    def ask(self, question: str, k: int, history: History = ()) -> dict[str, Any]:
        if not history:
            return self._call("POST", "/v1/ask", json={"question": question, "top_k": k})
        messages: list[dict[str, str]] = []
        for q, a in history:
            messages += [{"role": "user", "content": q}, {"role": "assistant", "content": str(a.get("answer", ""))}]
        messages.append({"role": "user", "content": question})
        body = self._call("POST", "/v1/chat/completions", json={"model": "rag", "messages": messages})
        try:
            content = body["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise BackendError("POST /v1/chat/completions returned no choices[0].message.content") from None
        return {"question": question, "answer": content, "abstained": body.get("abstained", False),
                "citations": body.get("citations", []), "timings": body.get("timings", {}),
                "model": body.get("model", ""), "standalone_question": body.get("standalone_question", "")}

    def search(self, question: str, k: int) -> dict[str, Any]:
        return self._call("GET", "/v1/search", params={"q": question, "k": k})

    def sources(self) -> list[str]:
        """The ids of the documents in the server's index."""
        docs = self._call("GET", "/v1/documents").get("documents")
        if not isinstance(docs, list):
            raise BackendError(f"GET {self.url}/v1/documents returned no 'documents' list")
        return [str(d.get("source")) for d in docs if isinstance(d, dict)]


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200] or response.reason_phrase
    if isinstance(body, dict):
        for key in ("message", "detail", "error"):
            value = body.get(key)
            if isinstance(value, dict):
                value = value.get("message", value)
            if value:
                return str(value)[:200]
    return str(body)[:200]


class CrossEncoderJudge:
    """An NLI cross-encoder (sentence-transformers) as an entailment judge."""

    def __init__(self, model: Any) -> None:
        self.model = model
        config = getattr(model, "config", None) or model.model.config
        labels = {int(i): str(name).lower() for i, name in config.id2label.items()}
        matches = [i for i, name in labels.items() if "entail" in name and "not" not in name]
        if not matches:
            raise ModelError(f"the NLI model has no 'entailment' label (labels: {sorted(labels.values())})")
        self.entailment = matches[0]

    def __call__(self, premise: str, hypothesis: str) -> bool:
        logits = self.model.predict([(premise, hypothesis)], show_progress_bar=False)[0]
        return int(max(range(len(logits)), key=lambda i: logits[i])) == self.entailment


def load_nli_judge(model: str) -> CrossEncoderJudge:
    """Load a local (offline) NLI cross-encoder; ``ModelError`` with a one-line reason when it cannot."""
    path = Path(model).expanduser()
    if not path.exists() and model.startswith((".", "/", "~")):
        raise ModelError(f"NLI model folder not found: {model}")
    try:
        from sentence_transformers import CrossEncoder

        return CrossEncoderJudge(CrossEncoder(str(path) if path.exists() else model, local_files_only=True))
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - any loading failure means "no judge"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelError(f"cannot load the NLI model {model!r}: {first[:200]}") from None


def nli_judgements(runs: Iterable[QuestionRun], judge: NliJudge) -> dict[str, bool]:
    """ALCE-style support check: do the cited passages (concatenated) entail the answer?

    Only answers that were given (not abstentions) and have citations are judged;
    the answer is judged as a whole (answers here are short)."""
    out = {}
    for run in runs:
        if run.answer.abstained or not run.answer.citations:
            continue
        premise = "\n".join(c.text for c in run.answer.citations)
        out[run.item.id] = bool(judge(premise, strip_markers(run.answer.answer)))
    return out


def score_runs(runs: Sequence[QuestionRun], k: int,
               nli: Mapping[str, bool] | None = None) -> list[QuestionScore]:
    """Score every run (``nli``: the optional second judge's verdicts by question id)."""
    nli = nli or {}
    return [score_question(r.item, r.answer, r.retrieved, k, nli.get(r.item.id)) for r in runs]
