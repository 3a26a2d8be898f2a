"""Scale benchmark: ingestion and query latency on a real corpus nobody here wrote
(the Python documentation's reST sources from Debian's ``python3.11-doc``), in
embedded and Chroma-server mode; and answer throughput with 1, 4 and 16 concurrent
clients, in-process llama.cpp versus ``python -m llama_cpp.server`` and, when it has
been built (``bash bench/build-llama-server``), llama.cpp's ``llama-server`` with
parallel slots (continuous batching).

Ingestion is measured for real at ``--ingest-size`` chunks (every chunk and
sentence embedded) into an empty index. Embedding 10k-100k chunks with their
sentences takes hours on 2 CPU cores (and the corpus has about 20k chunks), so
the indexes of ``--sizes`` chunks hold ``--base`` real chunks plus mixtures of
two real chunks (text joined, vectors summed and normalised), written straight
to the store; query latency is measured on them, then the real ingestion of
another ``--ingest-size`` chunks of documents not yet in the index (ingestion
throughput at that index size).

Set-up: ``apt-get install python3.11-doc`` (``bash bench/setup`` does it).
Run:    .venv/bin/python bench/scale.py [--sizes 1000 10000] [--repeats 3] [--json-out F]

References measured in the same run: bare embedding throughput of a sample of the
same texts (for ingestion) and embedding the query alone (for query latency);
for throughput, one client of the same deployment.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import free_port, query_latency  # noqa: E402
from bench.load import _run  # noqa: E402
from rag.ingest.chunking import chunk_text  # noqa: E402
from rag.index.embeddings import embed_documents, load_embedder  # noqa: E402
from rag.engine import Rag  # noqa: E402
from rag.answer.llama_model import repack_here  # noqa: E402
from rag.ingest.document import Document  # noqa: E402
from rag.settings import Settings  # noqa: E402
from tests.processes import ServerProcess  # noqa: E402

DOCS_GLOB = "/usr/share/doc/python3*/html/_sources"


def corpus() -> list[Document]:
    roots = sorted(glob.glob(DOCS_GLOB))
    if not roots:
        raise SystemExit("no Python documentation found: run 'bash bench/setup' (apt-get install python3.11-doc)")
    root = Path(roots[0]).resolve()  # several package folders may link to the same sources
    return [Document(str(f.relative_to(root)), f.read_text(encoding="utf-8", errors="replace"))
            for f in sorted(root.rglob("*.rst.txt"))]


def take(docs: list[Document], chunks: int) -> list[Document]:
    """Whole documents, in order, until about ``chunks`` chunks."""
    out, n = [], 0
    for d in docs:
        if n >= chunks:
            break
        out.append(d)
        n += len(chunk_text(d.source, d.text, 600))
    return out


def queries(docs: list[Document], n: int, rng: random.Random) -> list[str]:
    heads = [line.strip() for d in docs for line in d.text.splitlines()
             if 15 < len(line.strip()) < 80 and line.strip()[0].isalpha() and not line.startswith(" ")]
    return [f"How does {h.rstrip('.:').lower()} work?" for h in rng.sample(heads, min(n, len(heads)))]


def bench_ingest(embedder, docs: list[Document], size: int, chroma_url: str | None, repeats: int,
                 rng: random.Random) -> dict[str, object]:
    """Real ingestion (chunking, embedding chunks and sentences, writing) of about ``size`` chunks."""
    picked = take(docs, size)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), chroma_url=chroma_url, collection=f"b{size}_{rng.randrange(10**6)}")
        engine = Rag(settings, embedder=embedder)
        t0 = time.perf_counter()
        report = engine.ingestor.ingest_documents(picked)
        ingest_s = time.perf_counter() - t0
        texts = [t for d in picked for c in chunk_text(d.source, d.text, 600)
                 for t in (c.text, *(s.text for s in c.sentences))]
        sample = rng.sample(texts, min(400, len(texts)))
        t0 = time.perf_counter()
        embed_documents(embedder, sample)
        embed_s = (time.perf_counter() - t0) * len(set(texts)) / len(sample)
        row = {"mode": "server" if chroma_url else "embedded", "index": "ingested", "chunks": report.chunks,
               "documents": len(picked), "texts_embedded": len(set(texts)), "ingest_s": round(ingest_s, 1),
               "ingest_chunks_per_s": round(report.chunks / ingest_s, 1),
               "ingest_ratio_to_embedding_alone": round(ingest_s / embed_s, 2)}
        row |= {f"query_{k}": v for k, v in query_latency(engine, embedder, queries(picked, 50, rng), repeats).items()}
    return row


def bench_large(embedder, base_texts: list[str], base_vecs, size: int, chroma_url: str | None, repeats: int,
                qs: list[str], more: list[Document], rng: random.Random) -> dict[str, object]:
    """At ``size`` chunks, without embedding them all (hours on 2 cores; the corpus
    has about 20k chunks): the real chunks plus mixtures of two real chunks (text
    and normalised vector). Query latency, then real ingestion of the documents
    ``more`` into that index (ingestion throughput at that size)."""
    import numpy as np

    from rag.index.store import Record

    texts, vecs = list(base_texts), [v for v in base_vecs]
    while len(texts) < size:
        a, b = rng.randrange(len(base_texts)), rng.randrange(len(base_texts))
        v = base_vecs[a] + 0.5 * base_vecs[b]
        vecs.append(v / np.linalg.norm(v))
        texts.append(base_texts[a] + " " + base_texts[b][:200])
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), chroma_url=chroma_url, collection=f"l{size}_{rng.randrange(10**6)}")
        engine = Rag(settings, embedder=embedder)
        records = [Record(f"x{i}", t, {"source": f"docs/{i // 40}.txt", "start": 0, "end": len(t),
                                       "doc_hash": "x", "index": i % 40}) for i, t in enumerate(texts[:size])]
        t0 = time.perf_counter()
        engine.store.add(records, np.asarray(vecs[:size], dtype=np.float32), [],
                         np.zeros((0, embedder.dim), np.float32))
        write_s = time.perf_counter() - t0
        row = {"mode": "server" if chroma_url else "embedded", "index": "real + mixed", "chunks": size,
               "write_s": round(write_s, 1)}
        row |= {f"query_{k}": v for k, v in query_latency(engine, embedder, qs, repeats).items()}
        t0 = time.perf_counter()
        added = engine.ingestor.ingest_documents(more).chunks - size  # the report counts the whole index
        append_s = time.perf_counter() - t0
        row |= {"append_chunks": added, "append_s": round(append_s, 1),
                "append_chunks_per_s": round(added / append_s, 1)}
    return row


LLAMA_SERVER = ROOT / "bench" / ".llama-server" / "build" / "bin" / "llama-server"  # bash bench/build-llama-server


def bench_throughput(repeats: int, clients: list[int], tmp: Path, llama_server: Path | None,
                     slots: int) -> list[dict[str, object]]:
    questions = [json.loads(ln)["question"] for ln in (ROOT / "eval" / "dev.jsonl").read_text().splitlines()]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")} | {"HF_HUB_OFFLINE": "1"}
    py = sys.executable
    data = tmp / "data"
    import subprocess

    subprocess.run([py, "-m", "rag", "ingest", str(ROOT / "seeds"), "--data-dir", str(data), "--json"],
                   env=env, check=True, capture_output=True)
    rows = []
    settings = Settings()
    model = str(settings.model_path)
    modes = ["in-process", "llama_cpp.server"] + ([f"llama-server x{slots}"] if llama_server else [])
    for mode in modes:
        extra: dict[str, str] = {}
        llm: ServerProcess | None = None
        lport = free_port()
        if mode == "llama_cpp.server":
            command = [py, "-m", "rag.answer.llm_server", "--model", model, "--host", "127.0.0.1",
                       "--port", str(lport), "--n_ctx", "2048"]
        elif mode.startswith("llama-server"):  # continuous batching over `slots` parallel slots
            command = [str(llama_server), "-m", model, "--host", "127.0.0.1", "--port", str(lport),
                       "-c", str(2048 * slots), "--parallel", str(slots), "-t", str(settings.n_threads)]
            if not repack_here(settings.llm_repack).repack:  # as the project loads models (rag.answer.llama_model)
                command.append("--no-repack")
            extra["RAG_LLM_CONCURRENCY"] = str(slots)
        if mode != "in-process":
            llm = ServerProcess(command, f"http://127.0.0.1:{lport}/v1/models", tmp / "llm.log", env=env,
                                timeout=180).__enter__()
            extra["RAG_LLM_URL"] = f"http://127.0.0.1:{lport}/v1"
        port = free_port()
        try:
            with ServerProcess([py, "-m", "rag", "serve", "--port", str(port), "--data-dir", str(data)],
                               f"http://127.0.0.1:{port}/readyz", tmp / "serve.log", env=env | extra, timeout=180):
                url = f"http://127.0.0.1:{port}"
                asyncio.run(_run(url, questions, 1, 3))  # warm-up
                total = 4 * max(clients)  # every row asks the same questions
                for n in clients:
                    runs = [asyncio.run(_run(url, questions, n, total)) for _ in range(repeats)]
                    rows.append({"mode": mode, "clients": n,
                                 "throughput_per_s": round(statistics.median(r["throughput"] for r in runs), 2),
                                 "p50_ms": round(statistics.median(r["p50_ms"] for r in runs)),
                                 "p95_ms": round(statistics.median(r["p95_ms"] for r in runs)),
                                 "statuses": [r["statuses"] for r in runs]})
                    print(json.dumps(rows[-1]), file=sys.stderr)
        finally:
            if llm is not None:
                llm.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ingest-size", type=int, default=1000, help="chunks really ingested (embedded + written)")
    parser.add_argument("--base", type=int, default=1000, help="real chunks embedded for the larger indexes")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 100000],
                        help="index sizes (chunks) for query latency and ingestion at that size")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--llama-server", type=Path, default=LLAMA_SERVER if LLAMA_SERVER.is_file() else None,
                        help="llama.cpp's llama-server binary, for a third throughput mode "
                             "[default: the one bash bench/build-llama-server builds, if built]")
    parser.add_argument("--slots", type=int, default=4, help="llama-server's parallel slots")
    parser.add_argument("--skip-retrieval", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    rng = random.Random(7)
    result: dict[str, object] = {"retrieval": [], "throughput": []}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if not args.skip_retrieval:
            docs = corpus()
            embedder = load_embedder(Settings().embed_model, Settings().cache_dir)
            cport = free_port()
            rows: list[dict[str, object]] = result["retrieval"]  # type: ignore[assignment]
            with ServerProcess([str(Path(sys.executable).with_name("chroma")), "run", "--path", str(tmp / "chroma"),
                                "--host", "127.0.0.1", "--port", str(cport)],
                               f"http://127.0.0.1:{cport}/api/v2/heartbeat", tmp / "chroma.log"):
                modes = (None, f"http://127.0.0.1:{cport}")
                for url in modes:
                    rows.append(bench_ingest(embedder, docs, args.ingest_size, url, args.repeats, rng))
                    print(json.dumps(rows[-1]), file=sys.stderr)
                base_docs = take(docs, args.base)
                base = [c.text for d in base_docs for c in chunk_text(d.source, d.text, 600)]
                base_vecs = embedder.embed(base)
                more = take(docs[len(base_docs):], args.ingest_size)  # documents not in the index yet
                qs = queries(docs, 50, rng)
                for size in args.sizes:
                    for url in modes:
                        rows.append(bench_large(embedder, base, base_vecs, size, url, args.repeats, qs, more, rng))
                        print(json.dumps(rows[-1]), file=sys.stderr)
        if not args.skip_throughput:
            result["throughput"] = bench_throughput(args.repeats, args.clients, tmp, args.llama_server, args.slots)
    print(json.dumps(result, indent=2))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
