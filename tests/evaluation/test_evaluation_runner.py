"""The runner with plain callables and against a tiny real HTTP server (also
through the ``rag eval --url`` command)."""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import typer

from rag.cli.evaluate import eval_command
from rag.errors import BackendError, ModelError, RagError
from rag.evaluation.dataset import EvalItem
from rag.evaluation.runner import (
    CrossEncoderJudge,
    HttpBackend,
    QuestionRun,
    answer_from_dict,
    load_nli_judge,
    nli_judgements,
    passages_from_search,
    run_questions,
    score_runs,
)
from rag.types import Answer, Citation, Timings

ITEMS = [
    EvalItem("q1", "Who gets Llama?", (("Five Eyes",),), ("a.txt",), True),
    EvalItem("q2", "When is Llama 5 out?", (), (), False),
]


def answer_obj(question: str, text: str, abstained: bool = False, source: str = "a.txt",
               cited: str = "Llama goes to the Five Eyes.") -> dict[str, Any]:
    citations = [] if abstained else [Citation(1, source, f"{source}#0", 0, len(cited), cited, 0.9)]
    return Answer(question=question, answer=text, abstained=abstained, citations=citations,
                  timings=Timings(retrieval_ms=5, ttft_ms=50, total_ms=250), model="tiny.gguf").to_dict()


oracle_source = "a.txt"  # the id the oracle's citations carry


def oracle_ask(question: str, k: int) -> dict[str, Any]:
    if "Llama 5" in question:
        return answer_obj(question, "The documents do not say.", abstained=True)
    return answer_obj(question, "The Five Eyes [1].", source=oracle_source)


def search_obj(question: str, k: int) -> dict[str, Any]:
    hits = [{"source": f"{c}.txt", "chunk_id": f"{c}#0", "start": 0, "end": 10, "text": f"text {c} Five Eyes",
             "score": 1.0 / (i + 1)} for i, c in enumerate("abcdefgh")]
    return {"query": question, "results": hits[:k]}


def test_run_questions_with_plain_callables() -> None:
    asked: list[tuple[str, int]] = []
    progress: list[tuple[int, int]] = []

    def ask(q: str, k: int) -> dict[str, Any]:
        asked.append((q, k))
        return oracle_ask(q, k)

    runs = run_questions(ITEMS, ask, search_obj, k=3, progress=lambda d, t: progress.append((d, t)))
    assert asked == [("Who gets Llama?", 3), ("When is Llama 5 out?", 3)]
    assert progress == [(0, 2), (1, 2), (2, 2)]
    assert [r.item.id for r in runs] == ["q1", "q2"]
    assert runs[0].answer.citations[0].source == "a.txt" and not runs[0].answer.abstained
    assert runs[1].answer.abstained
    assert runs[0].retrieved is not None and [p.source for p in runs[0].retrieved] == ["a.txt", "b.txt", "c.txt"]
    scores = score_runs(runs, k=3)
    assert [s.strict for s in scores] == [True, True]
    assert scores[0].retrieval is not None and scores[0].retrieval.hit


def test_run_questions_without_search_and_with_an_overlong_search_result() -> None:
    runs = run_questions(ITEMS[:1], oracle_ask)
    assert runs[0].retrieved is None
    runs = run_questions(ITEMS[:1], oracle_ask, lambda q, k: search_obj(q, 8), k=2)
    assert runs[0].retrieved is not None and len(runs[0].retrieved) == 2


def test_answer_from_dict_round_trips_the_contract() -> None:
    obj = oracle_ask("Who gets Llama?", 5)
    ans = answer_from_dict(obj)
    assert ans.to_dict() == obj


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda d: d.pop("abstained"), "missing 'abstained'"),
    (lambda d: d.update(abstained="no"), "'abstained' has the wrong type"),
    (lambda d: d.update(citations=None), "'citations' has the wrong type"),
    (lambda d: d["citations"][0].pop("text"), "malformed citation: missing 'text'"),
    (lambda d: d["citations"][0].update(marker=True), "'marker' has the wrong type"),
    (lambda d: d.update(timings=[1, 2]), "'timings' is not an object"),
])
def test_answer_from_dict_rejects_malformed_objects(mutate: Any, expected: str) -> None:
    obj = oracle_ask("Who gets Llama?", 5)
    mutate(obj)
    with pytest.raises(BackendError, match=expected):
        answer_from_dict(obj)


def test_passages_from_search() -> None:
    assert [p.source for p in passages_from_search(search_obj("q", 2))] == ["a.txt", "b.txt"]
    with pytest.raises(BackendError, match="missing 'results'"):
        passages_from_search({"query": "q"})
    with pytest.raises(BackendError, match="missing 'text'"):
        passages_from_search({"results": [{"source": "a.txt"}]})


def test_nli_judgements_use_cited_texts_and_strip_markers() -> None:
    seen: list[tuple[str, str]] = []

    def judge(premise: str, hypothesis: str) -> bool:
        seen.append((premise, hypothesis))
        return "Five Eyes" in premise

    runs = run_questions(ITEMS, oracle_ask) + [
        QuestionRun(ITEMS[0], answer_from_dict({**oracle_ask("x", 5), "citations": []}))]
    verdicts = nli_judgements(runs, judge)
    assert verdicts == {"q1": True}  # the abstention and the uncited answer are not judged
    assert seen == [("Llama goes to the Five Eyes.", "The Five Eyes.")]


class FakeCrossEncoder:
    def __init__(self, labels: dict[int, str], logits: list[float]) -> None:
        self.config = type("Config", (), {"id2label": labels})()
        self.logits = logits
        self.pairs: list[Any] = []

    def predict(self, pairs: list[tuple[str, str]], show_progress_bar: bool = False) -> list[list[float]]:
        self.pairs.append(pairs)
        return [self.logits]


def test_cross_encoder_judge_picks_the_entailment_label() -> None:
    labels = {0: "contradiction", 1: "entailment", 2: "neutral"}
    judge = CrossEncoderJudge(FakeCrossEncoder(labels, [0.1, 2.0, 0.3]))
    assert judge("premise", "hypothesis") is True
    assert CrossEncoderJudge(FakeCrossEncoder(labels, [3.0, 2.0, 0.3]))("p", "h") is False
    with pytest.raises(ModelError, match="no 'entailment' label"):
        CrossEncoderJudge(FakeCrossEncoder({0: "LABEL_0", 1: "LABEL_1"}, [0, 1]))


def test_load_nli_judge_fails_cleanly(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="NLI model folder not found"):
        load_nli_judge("./no-such-nli-model")
    with pytest.raises(ModelError, match="cannot load the NLI model") as info:
        load_nli_judge(str(tmp_path))  # a folder, but no model in it
    assert "\n" not in info.value.message


# --- a tiny real HTTP server ------------------------------------------------------------------


class FakeServer(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.calls: list[tuple[str, Any, str | None]] = []
        self.fail: tuple[int, str] | None = None
        self.documents = ["a.txt", "b.txt"]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def _send(self, status: int, body: Mapping[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.calls.append(("ask", body, self.headers.get("Authorization")))
        if self.server.fail:
            self._send(self.server.fail[0], {"error": {"kind": "x", "message": self.server.fail[1]}})
        elif self.path == "/v1/chat/completions":
            last = body["messages"][-1]["content"]
            answer = oracle_ask(last, 5)
            self._send(200, {"id": "c1", "object": "chat.completion", "model": "tiny.gguf",
                             "choices": [{"index": 0, "finish_reason": "stop",
                                          "message": {"role": "assistant", "content": answer["answer"]}}],
                             "citations": answer["citations"], "abstained": answer["abstained"],
                             "timings": answer["timings"], "standalone_question": f"{last} (resolved)"})
        elif self.path != "/v1/ask":
            self._send(404, {"detail": "Not Found"})
        else:
            self._send(200, oracle_ask(body["question"], body["top_k"]))

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/v1/documents":
            self._send(200, {"documents": [{"source": s, "chunks": 1, "title": s} for s in self.server.documents]})
            return
        self.server.calls.append(("search", query, self.headers.get("Authorization")))
        if url.path != "/v1/search":
            self._send(404, {"detail": "Not Found"})
        else:
            self._send(200, search_obj(query["q"], int(query["k"])))


@pytest.fixture
def server() -> Iterator[FakeServer]:
    srv = FakeServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


@pytest.fixture
def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_http_backend_asks_and_searches(server: FakeServer) -> None:
    with HttpBackend(server.url + "/", api_key="s3cret") as backend:
        runs = run_questions(ITEMS, backend.ask, backend.search, k=4)
    assert [s.strict for s in score_runs(runs, 4)] == [True, True]
    assert server.calls[0] == ("ask", {"question": "Who gets Llama?", "top_k": 4}, "Bearer s3cret")
    assert server.calls[1] == ("search", {"q": "Who gets Llama?", "k": "4"}, "Bearer s3cret")
    assert len(server.calls) == 4


def test_http_backend_reports_server_errors(server: FakeServer) -> None:
    server.fail = (503, "model is loading")
    with HttpBackend(server.url) as backend, pytest.raises(BackendError) as info:
        backend.ask("Who?", 5)
    assert "HTTP 503" in info.value.message and "model is loading" in info.value.message


def test_http_backend_unreachable(dead_url: str) -> None:
    with HttpBackend(dead_url) as backend, pytest.raises(BackendError, match="cannot reach the server at"):
        run_questions(ITEMS, backend.ask)


def test_http_backend_rejects_a_non_http_url() -> None:
    with pytest.raises(BackendError, match="not an http"):
        HttpBackend("localhost:8000")


# --- the command against the server -----------------------------------------------------------


def invoke(argv: list[str]) -> int | None:
    """Run ``rag eval`` in a throwaway app; RagErrors propagate (``rag.cli.main.main`` maps them)."""
    app = typer.Typer(add_completion=False)
    app.callback()(lambda: None)
    app.command("eval")(eval_command)
    return app(args=["eval", *argv], standalone_mode=False)


@pytest.fixture
def dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("RAG_TOP_K", "RAG_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    path = tmp_path / "ds.jsonl"
    path.write_text("\n".join(json.dumps(i.to_dict()) for i in ITEMS) + "\n", encoding="utf-8")
    return path


def test_eval_command_against_a_server(server: FakeServer, dataset: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "out" / "report.json"
    rc = invoke([str(dataset), "--url", server.url, "-k", "2", "--json-out", str(report), "--min-strict", "1"])
    assert rc in (None, 0)
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["backend"] == server.url and data["k"] == 2 and data["model"] == "tiny.gguf"
    assert data["metrics"]["strict"] == 1.0 and data["metrics"]["retrieval_recall_at_k"] == 1.0
    assert {c[1].get("top_k") or int(c[1]["k"]) for c in server.calls} == {2}
    assert "answer-citation accuracy" in capsys.readouterr().out


def test_eval_command_scores_sources_under_the_folder_the_server_files_them_in(
        server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The server's index holds ``corpus/a.txt`` (``rag ingest corpus``), the dataset names ``a.txt``."""
    for var in ("RAG_TOP_K", "RAG_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(server, "documents", ["corpus/a.txt", "corpus/b.txt"])
    monkeypatch.setattr(sys.modules[__name__], "oracle_source", "corpus/a.txt")
    path = tmp_path / "ds.jsonl"
    path.write_text("\n".join(json.dumps(i.to_dict()) for i in ITEMS) + "\n", encoding="utf-8")
    report = tmp_path / "report.json"
    invoke([str(path), "--url", server.url, "--json-out", str(report)])
    assert json.loads(report.read_text())["metrics"]["strict"] == 1.0
    assert "scoring them as the index's ids under 'corpus/' (1 of 1 sources)" in capsys.readouterr().err
    monkeypatch.setattr(server, "documents", ["other/x.txt"])
    with pytest.raises(RagError, match="none of the 1 sources ds.jsonl cites is in the index: it names, e.g., "
                                       "'a.txt', the index holds, e.g., 'other/x.txt'") as info:
        invoke([str(path), "--url", server.url])
    assert info.value.exit_code == 1


def test_eval_command_unreachable_url(dead_url: str, dataset: Path) -> None:
    with pytest.raises(BackendError, match="cannot reach the server at"):
        invoke([str(dataset), "--url", dead_url])


def test_eval_command_bad_url_and_bad_dataset(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(RagError, match="--url must start with http"):
        invoke([str(dataset), "--url", "localhost:1"])
    with pytest.raises(RagError, match="dataset not found") as info:
        invoke([str(tmp_path / "missing.jsonl"), "--url", "http://127.0.0.1:1"])
    assert info.value.exit_code == 2


@pytest.mark.slow
def test_load_nli_judge_with_a_tiny_local_cross_encoder(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "five", "eyes", "llama"]))
    labels = {0: "contradiction", 1: "entailment", 2: "neutral"}
    config = transformers.BertConfig(vocab_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, num_labels=3, id2label=labels,
                                     label2id={v: k for k, v in labels.items()})
    transformers.BertForSequenceClassification(config).save_pretrained(tmp_path)
    transformers.BertTokenizer(str(vocab)).save_pretrained(tmp_path)
    judge = load_nli_judge(str(tmp_path))
    assert judge.entailment == 1
    assert isinstance(judge("five eyes", "llama"), bool)


CONVERSATION = EvalItem("c1", "And who gets Llama?", (("Five Eyes",),), ("a.txt",), True,
                        history=("Which models did Meta open?", "Who uses them?"))


def test_a_conversation_asks_its_earlier_turns_first_with_their_history() -> None:
    calls: list[tuple[str, tuple[str, ...]]] = []

    def ask(question: str, k: int, history: tuple[tuple[str, Mapping[str, Any]], ...] = ()) -> dict[str, Any]:
        calls.append((question, tuple(q for q, _ in history)))
        assert all(a["question"] == q for q, a in history)  # each earlier answer is kept with its question
        return oracle_ask(question, k)

    [run] = run_questions([CONVERSATION], ask, k=3)
    assert calls == [("Which models did Meta open?", ()), ("Who uses them?", ("Which models did Meta open?",)),
                     ("And who gets Llama?", ("Which models did Meta open?", "Who uses them?"))]
    assert run.answer.question == "And who gets Llama?" and score_runs([run], 3)[0].strict


def test_http_backend_asks_a_conversation_through_chat_completions(server: FakeServer) -> None:
    with HttpBackend(server.url) as backend:
        [run] = run_questions([CONVERSATION], backend.ask, k=2)
    kinds = [(c[0], "messages" in c[1]) for c in server.calls]
    assert kinds == [("ask", False), ("ask", True), ("ask", True)]  # /v1/ask, then two chat completions
    messages = server.calls[-1][1]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    assert [m["content"] for m in messages[::2]] == ["Which models did Meta open?", "Who uses them?",
                                                     "And who gets Llama?"]
    assert run.answer.answer == "The Five Eyes [1]." and score_runs([run], 2)[0].strict
