"""Make the formats suite: four development corpora written in the formats that
``rag ingest`` reads besides their own, with the same questions, to see what a
format costs in answers (``rag eval`` on it, next to the development suite).

    .venv/bin/python eval/formats/make.py OUT && .venv/bin/rag eval OUT/suite.json

* debian-faq (five HTML pages) -> one EPUB, a chapter per page (its <title> in
  the table of contents);
* gpl3 (plain text) -> a Word file: the text parser's headings as "Heading 1",
  list items as "List Bullet", paragraphs as they are;
* latex-usrguide (a 21-page PDF) -> a scanned PDF: every page rendered at 150 dpi
  as a grey picture, no text layer (read back by OCR); the gold pages are the same;
* nodejs-docs (three Markdown pages) -> one deck: a slide per section (its heading
  the slide's title; code and tables as text boxes); a question's gold pages are
  the slides of its supporting page that hold one of its answers.

Nothing here is fitted: the suite only reports. The files are made again on
each run (OUT is overwritten)."""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from rag.ingest.loaders import parse_document  # noqa: E402

EVAL = ROOT / "eval"


def _questions(name: str) -> list[dict]:
    path = EVAL / "corpora" / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def epub_of_html(folder: Path, title: str) -> bytes:
    import lxml.html

    from tests.documents import epub_bytes

    chapters = []
    for page in sorted(folder.glob("*.html")):
        root = lxml.html.fromstring(page.read_bytes())
        name = " ".join((root.findtext(".//title") or page.stem).split())
        for bad in root.xpath("//script|//style|//head"):
            bad.getparent().remove(bad)
        body = root.find(".//body")
        inner = "".join(lxml.html.tostring(child, encoding="unicode") for child in (body if body is not None else root))
        chapters.append((name, inner))
    return epub_bytes(chapters, title=title)


def docx_of_text(path: Path) -> bytes:
    from docx import Document

    parsed = parse_document(path.read_bytes(), path.name, [])
    out = Document()
    for block in parsed.blocks:
        text = " ".join(parsed.text[block.start:block.end].split())
        if block.kind == "heading":
            out.add_heading(text, level=1)
        elif block.kind == "item":
            out.add_paragraph(text, style="List Bullet")
        else:
            out.add_paragraph(text)
    buf = io.BytesIO()
    out.save(buf)
    return buf.getvalue()


def scanned_pdf(path: Path, dpi: int = 150) -> bytes:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(path.read_bytes())
    images = [pdf[i].render(scale=dpi / 72, grayscale=True).to_pil().convert("L") for i in range(len(pdf))]
    buf = io.BytesIO()
    images[0].save(buf, "PDF", resolution=dpi, save_all=True, append_images=images[1:])
    return buf.getvalue()


def pptx_of_markdown(folder: Path) -> tuple[bytes, dict[str, list[tuple[int, str]]]]:
    """The deck, and for each page its slides (number, text)."""
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    slides: dict[str, list[tuple[int, str]]] = {}
    number = 0
    for page in sorted(folder.glob("*.md")):
        parsed = parse_document(page.read_bytes(), page.name, [])
        groups: list[tuple[str, list[str]]] = []
        for block in parsed.blocks:
            text = parsed.text[block.start:block.end]
            if block.kind == "heading" or not groups:
                groups.append((" ".join(text.split()) if block.kind == "heading" else page.stem, []))
                if block.kind == "heading":
                    continue
            groups[-1][1].append(text if block.kind in ("code", "table") else " ".join(text.split()))
        for head, texts in groups:
            slide = deck.slides.add_slide(deck.slide_layouts[5])  # title only
            slide.shapes.title.text = head
            box = slide.shapes.add_textbox(Inches(0.5), Inches(1.5), Inches(9), Inches(5)).text_frame
            box.text = texts[0] if texts else ""
            for text in texts[1:]:
                box.add_paragraph().text = text
            number += 1
            slides.setdefault(page.name, []).append((number, "\n".join([head, *texts])))
    buf = io.BytesIO()
    deck.save(buf)
    return buf.getvalue(), slides


def _slide_pages(question: dict, slides: dict[str, list[tuple[int, str]]]) -> list[int]:
    aliases = [a.lower() for fact in question.get("answers", []) for a in fact]
    return sorted({n for source in question.get("supporting", []) for n, text in slides.get(source, [])
                   if any(a in " ".join(text.lower().split()) for a in aliases)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write the suite to (suite.json, files, questions)")
    args = parser.parse_args()
    out: Path = args.out
    corpora = EVAL / "corpora"
    made: list[tuple[str, str, bytes, list[dict]]] = []

    qs = _questions("debian-faq")
    made.append(("debian-faq-epub", "debian-faq.epub", epub_of_html(corpora / "debian-faq", "The Debian FAQ"),
                 [{**q, "supporting": ["debian-faq.epub"] if q["supporting"] else []} for q in qs]))
    qs = _questions("gpl3")
    text = next((corpora / "gpl3").glob("*.txt"))
    made.append(("gpl3-docx", "gpl3.docx", docx_of_text(text),
                 [{**q, "supporting": ["gpl3.docx"] if q["supporting"] else []} for q in qs]))
    qs = _questions("latex-usrguide")
    made.append(("latex-usrguide-scanned", "usrguide-scanned.pdf", scanned_pdf(corpora / "latex-usrguide" /
                                                                                 "usrguide.pdf"),
                 [{**q, "supporting": ["usrguide-scanned.pdf"] if q["supporting"] else []} for q in qs]))
    deck, slides = pptx_of_markdown(corpora / "nodejs-docs")
    qs = []
    for q in _questions("nodejs-docs"):
        pages = _slide_pages(q, slides) if q.get("answerable") else []
        q = {**q, "supporting": ["nodejs-docs.pptx"] if q["supporting"] else []}
        if pages:
            q["pages"] = pages
        qs.append(q)
    made.append(("nodejs-docs-pptx", "nodejs-docs.pptx", deck, qs))

    entries = []
    for name, file_name, raw, questions in made:
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        (folder / file_name).write_bytes(raw)
        lines = "".join(json.dumps(q, ensure_ascii=False) + "\n" for q in questions)
        (out / f"{name}.jsonl").write_text(lines, encoding="utf-8")
        entries.append({"name": name, "documents": name, "questions": f"{name}.jsonl"})
        print(f"{name}: {file_name} ({len(raw) // 1024} KiB), {len(questions)} questions", file=sys.stderr)
    (out / "suite.json").write_text(json.dumps({
        "description": "Four development corpora in other formats (eval/formats/make.py), same questions.",
        "corpora": entries}, indent=2) + "\n", encoding="utf-8")
    print(out / "suite.json")


if __name__ == "__main__":
    main()
