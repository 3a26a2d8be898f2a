"""Ingestion throughput: chunks/s of real ingestion into a fresh index for each
corpus of the development suite, next to the raw embedder on the same texts,
measured in the same run.

Run: .venv/bin/python bench/ingest.py [--repeats 3] [--suite eval/suite.json] [--embedder default|torch]
     .venv/bin/python bench/ingest.py --formats [--repeats 3]

For every corpus and repeat, ``rag ingest`` runs in process on the corpus's
folder into a new temporary index (parsing, chunking, embedding every distinct
chunk and sentence, writing to Chroma) with the embedder the product loads
(``--embedder default``: ``rag.index.embeddings.load_embedder``, ONNX Runtime; or
``torch``: sentence-transformers for everything, as before the ONNX path).
The reference is the raw embedder: sentence-transformers (torch)
``encode(texts, batch_size=64)`` of exactly the texts that ingestion handed to
its embedder (recorded in an untimed first ingestion, which also warms the
caches), timed right after each ingestion or, every other repeat, right before
it. Both models are loaded and warmed up before timing.
Reported per corpus: medians over repeats of seconds and chunks/s, and the
ratio of ingestion's chunks/s to the raw embedder's (above 1: ingestion,
writing included, is faster than torch embedding the same texts alone).

``--formats``: how fast each file type is read (parsing only: chunking and
embedding are the same for every type, above). The seed articles (four copies)
are made into a Word file (a heading per article), a deck (a slide per
paragraph), an EPUB (a chapter per article), a PDF with a text layer (reportlab,
50 lines a page) and a scanned PDF (its first pages drawn as pictures by Pillow
at 150 dpi, read by Tesseract at the default 300 dpi, no cache). Reported per
type: median seconds, units a second (paragraphs, slides, chapters, pages) and
the ratio of its characters a second to parsing the same text as an HTML file,
measured in the same run; for the scan, pages a second and the ratio to the
same pages with a text layer.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from rag.index.embeddings import Embedder, SentenceTransformerEmbedder, embed_documents, load_embedder  # noqa: E402
from rag.engine import Rag  # noqa: E402
from rag.evaluation.suite import Corpus, load_suite  # noqa: E402
from rag.settings import Settings  # noqa: E402


class Recording:
    """An embedder that passes everything on and keeps the texts it was given."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.texts: list[str] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        self.texts.extend(texts)
        return self.inner.embed(texts)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        self.texts.extend(texts)
        return embed_documents(self.inner, texts)


def ingest_once(corpus: Corpus, embedder: Embedder, settings: Settings) -> tuple[float, int]:
    """Seconds to ingest ``corpus`` into a fresh index, and the chunks it holds."""
    with tempfile.TemporaryDirectory(prefix="rag-bench-ingest-") as tmp:
        engine = Rag(settings.model_copy(update={"data_dir": Path(tmp)}), embedder=embedder)
        t0 = time.perf_counter()
        report, _ = engine.ingestor.ingest_paths([corpus.documents], prefix="")
        seconds = time.perf_counter() - t0
    return seconds, report.chunks


def raw_once(reference: SentenceTransformerEmbedder, texts: list[str]) -> float:
    t0 = time.perf_counter()
    reference.embed(texts)
    return time.perf_counter() - t0


def bench_corpus(corpus: Corpus, embedder: Embedder, reference: SentenceTransformerEmbedder,
                 settings: Settings, repeats: int) -> dict[str, object]:
    recording = Recording(embedder)
    ingest_once(corpus, recording, settings)  # untimed: records the texts ingestion embeds, warms the caches
    texts = recording.texts
    ingest_s, raw_s, chunks = [], [], 0
    for repeat in range(repeats):  # which goes first alternates, so both meet the same machine state
        if repeat % 2:
            raw_s.append(raw_once(reference, texts))
        seconds, chunks = ingest_once(corpus, embedder, settings)
        ingest_s.append(seconds)
        if not repeat % 2:
            raw_s.append(raw_once(reference, texts))
    ingest, raw = statistics.median(ingest_s), statistics.median(raw_s)
    return {"corpus": corpus.name, "chunks": chunks, "texts_embedded": len(texts),
            "ingest_s": round(ingest, 2), "ingest_chunks_per_s": round(chunks / ingest, 1),
            "raw_s": round(raw, 2), "raw_chunks_per_s": round(chunks / raw, 1),
            "ratio_to_raw": round(raw / ingest, 2), "runs_ingest_s": [round(s, 2) for s in ingest_s],
            "runs_raw_s": [round(s, 2) for s in raw_s]}


def print_table(rows: list[dict[str, object]], backend: str) -> None:
    print(f"ingestion embedder: {backend}")
    print(f"{'corpus':16s} {'chunks':>6s} {'texts':>6s} {'ingest s':>9s} {'chunks/s':>9s} "
          f"{'raw s':>7s} {'raw chunks/s':>12s} {'ratio':>6s}")
    for r in rows:
        print(f"{r['corpus']:16s} {r['chunks']:6d} {r['texts_embedded']:6d} {r['ingest_s']:9.2f} "
              f"{r['ingest_chunks_per_s']:9.1f} {r['raw_s']:7.2f} {r['raw_chunks_per_s']:12.1f} "
              f"{r['ratio_to_raw']:6.2f}")


def _median_s(work, repeats: int) -> float:  # noqa: ANN001 - a callable without arguments
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        work()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _text_pdf(lines: list[str], per_page: int = 50) -> bytes:
    from reportlab.pdfgen.canvas import Canvas

    buf = io.BytesIO()
    canvas = Canvas(buf, pagesize=(595, 842))
    for i, line in enumerate(lines):
        if i and not i % per_page:
            canvas.showPage()
        canvas.setFont("Helvetica", 10)
        canvas.drawString(56, 800 - 14.5 * (i % per_page), line)
    canvas.showPage()
    canvas.save()
    return buf.getvalue()


def bench_formats(repeats: int, scanned_pages: int = 3) -> list[dict[str, object]]:
    """Parsing speed of each file type (module docstring)."""
    import textwrap

    from rag.ingest.loaders import parse_document
    from rag.ingest.parsers.ocr import OcrOptions
    from tests.documents import articles_docx, epub_bytes, pptx_bytes, scanned_pdf_bytes

    articles = []
    for _ in range(4):
        for path in sorted((ROOT / "seeds").glob("*.txt")):
            paras = [" ".join(p.split()) for p in path.read_text(encoding="utf-8").splitlines() if p.strip()]
            articles.append((paras[0][:80], paras[1:]))
    html = "<html><body>" + "".join(f"<h1>{t}</h1>" + "".join(f"<p>{p}</p>" for p in ps)
                                    for t, ps in articles) + "</body></html>"
    same = parse_document(html.encode(), "same.html", [])
    lines = [ln for t, ps in articles for p in [t, *ps] for ln in textwrap.wrap(p, 95) + [""]]
    per_page = 50
    files = {
        "docx": (articles_docx(articles), sum(1 + len(ps) for _, ps in articles), "paragraphs"),
        "pptx": (pptx_bytes([(t, [p], None) for t, ps in articles for p in ps]),
                 sum(len(ps) for _, ps in articles), "slides"),
        "epub": (epub_bytes([(t, f"<h1>{t}</h1>" + "".join(f"<p>{p}</p>" for p in ps)) for t, ps in articles]),
                 len(articles), "chapters"),
        "pdf": (_text_pdf(lines, per_page), -(-len(lines) // per_page), "pages"),
    }
    html_s = _median_s(lambda: parse_document(html.encode(), "same.html", []), repeats)
    rows = []
    for kind, (raw, units, unit) in files.items():
        doc = parse_document(raw, f"bench.{kind}", [])
        seconds = _median_s(lambda: parse_document(raw, f"bench.{kind}", []), repeats)
        rows.append({"format": kind, "units": units, "unit": unit, "chars": len(doc.text), "s": round(seconds, 3),
                     "units_per_s": round(units / seconds, 1),
                     "ratio_to_html": round((len(doc.text) / seconds) / (len(same.text) / html_s), 3)})
    page_lines = [lines[i * per_page:(i + 1) * per_page] for i in range(scanned_pages)]
    typed = _text_pdf([ln for page in page_lines for ln in page], per_page)
    scan = scanned_pdf_bytes([[ln or " " for ln in page] for page in page_lines], dpi=150)
    ocr = OcrOptions(cache_dir=None)
    typed_s = _median_s(lambda: parse_document(typed, "typed.pdf", []), repeats)
    scan_s = _median_s(lambda: parse_document(scan, "scan.pdf", [], ocr=ocr), repeats)
    rows.append({"format": "pdf (scanned, OCR)", "units": scanned_pages, "unit": "pages",
                 "chars": len(parse_document(scan, "scan.pdf", [], ocr=ocr).text), "s": round(scan_s, 3),
                 "units_per_s": round(scanned_pages / scan_s, 2), "ratio_to_text_pdf": round(typed_s / scan_s, 4)})
    print(f"{'format':20s} {'units':>6s} {'unit':10s} {'chars':>7s} {'median s':>9s} {'units/s':>8s} {'ratio':>8s}")
    for r in rows:
        ratio = r.get("ratio_to_html", r.get("ratio_to_text_pdf"))
        print(f"{r['format']:20s} {r['units']:6d} {r['unit']:10s} {r['chars']:7d} {r['s']:9.3f} "
              f"{r['units_per_s']:8.1f} {ratio:8.3f}")
    print(f"ratio: characters/s against parsing the same text as HTML ({len(same.text) / html_s:,.0f} chars/s "
          "here); for the scan, pages/s against the same pages with a text layer")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--formats", action="store_true",
                        help="how fast each file type is parsed (Word, PowerPoint, EPUB, PDF, scanned PDF)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--suite", type=Path, default=ROOT / "eval" / "suite.json")
    parser.add_argument("--corpus", action="append", help="only this corpus of the suite (repeatable)")
    parser.add_argument("--embedder", choices=("default", "torch"), default="default")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.formats:
        rows = bench_formats(args.repeats)
        if args.json_out:
            args.json_out.write_text(json.dumps({"repeats": args.repeats, "formats": rows}, indent=2))
        return

    settings = Settings()
    corpora = [c for c in load_suite(args.suite) if not args.corpus or c.name in args.corpus]
    reference = SentenceTransformerEmbedder(settings.embed_model)
    if args.embedder == "torch":
        embedder: Embedder = reference
    else:
        embedder = load_embedder(settings.embed_model, settings.cache_dir, quantized=settings.embed_quantized,
                                 device=settings.embed_device)
    warm = ["warm up the models", "a second, somewhat longer text to warm up the models with"]
    reference.embed(warm)
    embed_documents(embedder, warm)
    backend = getattr(embedder, "documents_backend", "") or type(embedder).__name__
    rows = [bench_corpus(c, embedder, reference, settings, args.repeats) for c in corpora]
    chunks = sum(int(r["chunks"]) for r in rows)
    ingest = sum(float(r["ingest_s"]) for r in rows)
    raw = sum(float(r["raw_s"]) for r in rows)
    rows.append({"corpus": "all", "chunks": chunks, "texts_embedded": sum(int(r["texts_embedded"]) for r in rows),
                 "ingest_s": round(ingest, 2), "ingest_chunks_per_s": round(chunks / ingest, 1),
                 "raw_s": round(raw, 2), "raw_chunks_per_s": round(chunks / raw, 1),
                 "ratio_to_raw": round(raw / ingest, 2)})
    print_table(rows, backend)
    if args.json_out:
        args.json_out.write_text(json.dumps({"embedder": backend, "repeats": args.repeats, "corpora": rows},
                                            indent=2))


if __name__ == "__main__":
    main()
