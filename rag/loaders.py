"""Read files into parsed documents (``rag.document.Document``).

Supported: ``.txt`` (``rag.parsers.text``), ``.md``/``.markdown``
(``rag.parsers.markdown``), ``.html``/``.htm`` (``rag.parsers.html``) and ``.pdf``
(``rag.parsers.pdf``). A document's ``text`` is what chunks and citation offsets
refer to: the file itself for plain text, the extracted text for the others.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from rag.document import Document
from rag.errors import IngestError, InputError
from rag.parsers.text import parse_text

log = logging.getLogger(__name__)

MARKDOWN_SUFFIXES = {".md", ".markdown"}
TEXT_SUFFIXES = {".txt"} | MARKDOWN_SUFFIXES
HTML_SUFFIXES = {".html", ".htm"}
PDF_SUFFIXES = {".pdf"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES


@dataclass
class LoadResult:
    documents: list[Document] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def decode_bytes(raw: bytes, name: str, warnings: list[str]) -> str:
    if b"\x00" in raw[:8192]:
        raise IngestError(f"{name}: looks like a binary file (NUL bytes), not text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        warnings.append(f"{name}: invalid UTF-8, undecodable bytes replaced")
        return raw.decode("utf-8", errors="replace")


def parse_document(raw: bytes, name: str, warnings: list[str], source: str | None = None) -> Document:
    """The parsed document of a file's bytes, by the suffix of ``name``."""
    source = source or name
    suffix = Path(name).suffix.lower()
    if suffix in PDF_SUFFIXES:
        from rag.parsers.pdf import parse_pdf

        return parse_pdf(raw, source)
    return parse_string(decode_bytes(raw, name, warnings), source, suffix)


def parse_string(text: str, source: str, suffix: str | None = None) -> Document:
    """The parsed document of a text, by ``suffix`` (default: the source's)."""
    suffix = (suffix if suffix is not None else Path(source).suffix).lower()
    if suffix in HTML_SUFFIXES:
        from rag.parsers.html import parse_html

        return parse_html(text, source)
    if suffix in MARKDOWN_SUFFIXES:
        from rag.parsers.markdown import parse_markdown

        return parse_markdown(text, source)
    return parse_text(text, source)


def read_file(path: Path, source: str, warnings: list[str]) -> Document:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise IngestError(f"{path}: unsupported file type {suffix or '(none)'}; "
                          f"supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}")
    try:
        raw = path.read_bytes()
    except PermissionError as exc:
        raise IngestError(f"{path}: not readable ({exc.strerror})") from exc
    except OSError as exc:
        raise IngestError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    return parse_document(raw, path.name, warnings, source)


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
            doc = read_file(path, source, result.warnings)
            if not doc.text.strip():
                result.warnings.append(f"{path}: empty, skipped")
                continue
            result.documents.append(doc)
    return result
