"""Read files into plain text documents.

Supported: ``.txt``, ``.md``, ``.html``/``.htm`` (visible text extracted), ``.pdf``
(text extracted with pypdf). A document's ``text`` is what chunks and citation
offsets refer to (for HTML and PDF that is the extracted text).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from rag.errors import IngestError, InputError

log = logging.getLogger(__name__)

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
PDF_SUFFIXES = {".pdf"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES


@dataclass(frozen=True)
class Document:
    source: str
    text: str


@dataclass
class LoadResult:
    documents: list[Document] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


class _TextExtractor(HTMLParser):
    _SKIP = {"script", "style", "noscript", "template", "svg", "head"}
    _BLOCK = {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table",
              "section", "article", "header", "footer", "blockquote", "pre", "dd", "dt", "title", "main",
              "nav", "aside", "figure", "figcaption", "hr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip_depth += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip_depth:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    lines = [re.sub(r"[ \t\r\f\v\u00a0]+", " ", line).strip() for line in text.split("\n")]
    return "\n".join(line for line in lines if line)


def decode_bytes(raw: bytes, name: str, warnings: list[str]) -> str:
    if b"\x00" in raw[:8192]:
        raise IngestError(f"{name}: looks like a binary file (NUL bytes), not text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        warnings.append(f"{name}: invalid UTF-8, undecodable bytes replaced")
        return raw.decode("utf-8", errors="replace")


def _pdf_text(path: Path) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except (PdfReadError, ValueError, OSError) as exc:
        raise IngestError(f"{path}: cannot read PDF ({exc})") from exc
    return "\n\n".join(p for p in pages if p)


def text_from_bytes(raw: bytes, name: str, warnings: list[str]) -> str:
    """Extracted text of an uploaded or read file, chosen by the name's suffix."""
    suffix = Path(name).suffix.lower()
    if suffix in PDF_SUFFIXES:
        raise IngestError(f"{name}: PDF must be read from a file path")
    text = decode_bytes(raw, name, warnings)
    if suffix in HTML_SUFFIXES:
        text = html_to_text(text)
    return text


def read_file(path: Path, source: str, warnings: list[str]) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise IngestError(f"{path}: unsupported file type {suffix or '(none)'}; "
                          f"supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}")
    try:
        if suffix in PDF_SUFFIXES:
            return _pdf_text(path)
        raw = path.read_bytes()
    except PermissionError as exc:
        raise IngestError(f"{path}: not readable ({exc.strerror})") from exc
    except OSError as exc:
        raise IngestError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    return text_from_bytes(raw, source, warnings)


def _iter_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not any(
        part.startswith(".") for part in p.relative_to(root).parts))


def load_paths(paths: list[Path]) -> LoadResult:
    """Load every supported file under ``paths``. Raises before returning anything
    if a path is missing or a file cannot be read, so callers write nothing."""
    result = LoadResult()
    seen: dict[str, Path] = {}
    for given in paths:
        if not given.exists():
            raise InputError(f"{given}: no such file or directory")
        if given.is_dir():
            files = [p for p in _iter_files(given) if p.suffix.lower() in SUPPORTED_SUFFIXES]
            result.skipped += [str(p) for p in _iter_files(given) if p.suffix.lower() not in SUPPORTED_SUFFIXES]
            if not files:
                raise InputError(f"{given}: no supported files ({', '.join(sorted(SUPPORTED_SUFFIXES))})")
            pairs = [(p, p.relative_to(given).as_posix()) for p in files]
        else:
            pairs = [(given, given.name)]
        for path, source in pairs:
            if source in seen:
                if seen[source].resolve() == path.resolve():
                    continue  # the same file named twice
                raise InputError(f"two files map to the same source name {source!r}: {seen[source]} and {path}")
            seen[source] = path
            text = read_file(path, source, result.warnings)
            if not text.strip():
                result.warnings.append(f"{path}: empty, skipped")
                continue
            result.documents.append(Document(source=source, text=text))
    return result
