"""Read files into parsed documents (``rag.ingest.document.Document``).

Supported: ``.txt`` (``rag.ingest.parsers.text``), ``.md``/``.markdown``
(``rag.ingest.parsers.markdown``), ``.html``/``.htm`` (``rag.ingest.parsers.html``), ``.pdf``
(``rag.ingest.parsers.pdf``, scanned pages through OCR: ``rag.ingest.parsers.ocr``),
``.docx`` (``rag.ingest.parsers.word``), ``.pptx`` (``rag.ingest.parsers.slides``) and
``.epub`` (``rag.ingest.parsers.ebook``). A document's ``text`` is what chunks and
citation offsets refer to: the file itself for plain text, the extracted text for
the others.

Source ids (``load_paths``): a file is named by its path relative to the folder
given, under that folder's own name (``projA`` gives ``projA/README.md`` and
``projA/sub/x.md``); a file given by itself is named under the name of the folder
it is in (``projA/README.md`` again, so both ways agree). ``prefix`` replaces the
folder name; ``prefix=""`` gives the bare relative paths (``README.md``) that
indexes made before this rule hold, and that evaluation datasets name.

A file found in a folder that cannot be ingested (an unsupported type, unreadable,
binary, failing to parse, without text) is skipped with its reason
(``LoadResult.skipped``); a file named by itself that cannot be read is an error.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rag.ingest.document import Document, validate_source
from rag.errors import IngestError, InputError, UnsupportedFormatError
from rag.ingest.parsers.ocr import OcrOptions
from rag.ingest.parsers.text import parse_text

log = logging.getLogger(__name__)

MARKDOWN_SUFFIXES = {".md", ".markdown"}
TEXT_SUFFIXES = {".txt"} | MARKDOWN_SUFFIXES
HTML_SUFFIXES = {".html", ".htm"}
PDF_SUFFIXES = {".pdf"}
DOCX_SUFFIXES = {".docx"}
PPTX_SUFFIXES = {".pptx"}
EPUB_SUFFIXES = {".epub"}
# files that are not text: read as bytes by their own parser (never decoded, never "binary")
BINARY_SUFFIXES = PDF_SUFFIXES | DOCX_SUFFIXES | PPTX_SUFFIXES | EPUB_SUFFIXES
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | BINARY_SUFFIXES
SUPPORTED_LIST = ", ".join(sorted(SUPPORTED_SUFFIXES))


@dataclass(frozen=True)
class Skipped:
    """A file that was not ingested, and why (one line)."""

    source: str
    reason: str


@dataclass
class LoadResult:
    documents: list[Document] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # read anyway (e.g. invalid UTF-8 replaced)
    skipped: list[Skipped] = field(default_factory=list)
    # source id -> the bare id (path relative to the folder given) that older
    # versions gave the same file; only for ids that carry a prefix
    bare: dict[str, str] = field(default_factory=dict)


class _Unusable(Exception):
    """Why one file cannot be ingested; the message is the reason, without the file's name."""


def unsupported_message(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return f"{name}: unsupported file type {suffix or '(none)'}; supported: {SUPPORTED_LIST}"


def check_supported(name: str) -> str:
    """The lower-case suffix of ``name``; UnsupportedFormatError if no parser reads it."""
    suffix = Path(name).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise UnsupportedFormatError(unsupported_message(name))
    return suffix


def _is_binary(raw: bytes) -> bool:
    return b"\x00" in raw[:8192]


def decode_bytes(raw: bytes, name: str, warnings: list[str]) -> str:
    if _is_binary(raw):
        raise IngestError(f"{name}: looks like a binary file (NUL bytes), not text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        warnings.append(f"{name}: invalid UTF-8, undecodable bytes replaced")
        return raw.decode("utf-8", errors="replace")


def parse_document(raw: bytes, name: str, warnings: list[str], source: str | None = None,
                   ocr: OcrOptions | None = None) -> Document:
    """The parsed document of a file's bytes, by the suffix of ``name``; ``ocr``:
    how scanned PDF pages are read (default: ``OcrOptions()``, no cache)."""
    source = source or name
    suffix = Path(name).suffix.lower()
    if suffix in PDF_SUFFIXES:
        from rag.ingest.parsers.pdf import parse_pdf

        return parse_pdf(raw, source, ocr, warnings)
    if suffix in DOCX_SUFFIXES:
        from rag.ingest.parsers.word import parse_docx

        return parse_docx(raw, source)
    if suffix in PPTX_SUFFIXES:
        from rag.ingest.parsers.slides import parse_pptx

        return parse_pptx(raw, source)
    if suffix in EPUB_SUFFIXES:
        from rag.ingest.parsers.ebook import parse_epub

        return parse_epub(raw, source)
    return parse_string(decode_bytes(raw, name, warnings), source, suffix)


def parse_string(text: str, source: str, suffix: str | None = None) -> Document:
    """The parsed document of a text, by ``suffix`` (default: the source's)."""
    suffix = (suffix if suffix is not None else Path(source).suffix).lower()
    if suffix in HTML_SUFFIXES:
        from rag.ingest.parsers.html import parse_html

        return parse_html(text, source)
    if suffix in MARKDOWN_SUFFIXES:
        from rag.ingest.parsers.markdown import parse_markdown

        return parse_markdown(text, source)
    return parse_text(text, source)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _load(path: Path, source: str, warnings: list[str], ocr: OcrOptions | None = None) -> Document:
    """The parsed file. ``_Unusable`` for an unsupported, unreadable or binary file,
    ``IngestError`` (naming the file) when its parser refuses it; other exceptions
    of a parser pass through."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise _Unusable(f"unsupported file type {suffix or '(none)'}")
    try:
        raw = path.read_bytes()
    except PermissionError as exc:
        raise _Unusable(f"not readable ({exc.strerror})") from None
    except OSError as exc:
        raise _Unusable(f"cannot read ({exc.strerror or exc})") from None
    if suffix not in BINARY_SUFFIXES and _is_binary(raw):
        raise _Unusable("looks like a binary file (NUL bytes), not text")
    return parse_document(raw, path.name, warnings, source, ocr)


def read_file(path: Path, source: str, warnings: list[str], ocr: OcrOptions | None = None) -> Document:
    """One file named by the user: any reason it cannot be read is an error
    (UnsupportedFormatError for a type no parser reads)."""
    check_supported(str(path))
    try:
        return _load(path, source, warnings, ocr)
    except _Unusable as exc:
        raise IngestError(f"{path}: {exc}") from None
    except IngestError:
        raise
    except Exception as exc:  # noqa: BLE001 - a parser failing on a damaged file: one line, no traceback
        log.debug("parsing %s failed", path, exc_info=True)
        raise IngestError(f"{path}: cannot parse ({_one_line(exc)})") from None


def _skip_reason(path: Path, source: str, warnings: list[str],
                 ocr: OcrOptions | None = None) -> tuple[Document | None, str]:
    """(the document, "") or (None, why the file found in a folder is skipped)."""
    try:
        doc = _load(path, source, warnings, ocr)
    except _Unusable as exc:
        return None, str(exc)
    except IngestError as exc:  # a parser's refusal names the file: the skipped entry names it already
        return None, exc.message.replace(f" {source}:", ":", 1)
    except Exception as exc:  # noqa: BLE001 - a parser failing on a damaged file: skipped with its reason
        log.debug("parsing %s failed", path, exc_info=True)
        return None, f"cannot parse ({_one_line(exc)})"
    return doc, ""


def _walk(root: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The files under ``root`` (hidden files and folders left out, symbolic links
    to folders not followed), and the folders that could not be listed."""
    files: list[Path] = []
    problems: list[tuple[Path, str]] = []

    def failed(exc: OSError) -> None:
        problems.append((Path(exc.filename), f"folder not readable ({exc.strerror or exc})"))

    for folder, dirs, names in os.walk(root, onerror=failed):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        here = Path(folder)
        files += [here / n for n in names if not n.startswith(".") and (here / n).is_file()]
    return sorted(files), problems


def _head(given: Path, prefix: str | None) -> str:
    """What source ids start with: ``prefix``, else the name of the folder given
    (for a file, of the folder it is in)."""
    if prefix is not None:
        head = prefix.strip("/")
        what = f"source prefix {prefix!r}"
    else:
        folder = Path(os.path.abspath(given))
        head = (folder if folder.is_dir() else folder.parent).name
        what = f"folder name {head!r} (of {given})"
    if head:
        try:
            validate_source(f"{head}/x")
        except InputError:
            raise InputError(f"the {what} cannot start a source id (no '..', '\\', ':' in its first part "
                             "or control characters); choose one with --prefix NAME") from None
    return head


def load_paths(paths: Sequence[Path], prefix: str | None = None, ocr: OcrOptions | None = None) -> LoadResult:
    """Load every supported file under ``paths``, named by the rule in the module
    docstring (``ocr``: how scanned PDF pages are read). Files found in folders that
    cannot be ingested are skipped with their reason. Raises before returning
    anything if a path is missing, a file given by itself cannot be read, or two
    different files would get the same id."""
    result = LoadResult()
    by_source: dict[str, Path] = {}
    by_file: set[Path] = set()
    for given in paths:
        if not given.exists():
            raise InputError(f"{given}: no such file or directory")
        head = _head(given, prefix)
        in_folder = given.is_dir()
        if in_folder:
            files, problems = _walk(given)
            if not any(p.suffix.lower() in SUPPORTED_SUFFIXES for p in files) and not problems:
                raise InputError(f"{given}: no supported files ({SUPPORTED_LIST})")
            pairs = [(p, p.relative_to(given).as_posix()) for p in files]
            for folder, reason in problems:
                if folder == given:
                    raise IngestError(f"{given}: {reason}")
                rel = folder.relative_to(given).as_posix() + "/"
                result.skipped.append(Skipped(f"{head}/{rel}" if head else rel, reason))
        else:
            check_supported(str(given))
            pairs = [(given, given.name)]
        for path, rel in pairs:
            source = f"{head}/{rel}" if head else rel
            same = path.resolve()
            if same in by_file:
                continue  # the same file reached twice (named, or in nested folders given): its first id
            if source in by_source:
                raise InputError(f"two files would have the same source id {source!r}: {by_source[source]} and "
                                 f"{path}; ingest them separately with different --prefix NAME")
            by_source[source] = path
            by_file.add(same)
            if in_folder:
                doc, reason = _skip_reason(path, source, result.warnings, ocr)
            else:
                doc, reason = read_file(path, source, result.warnings, ocr), ""
            if doc is not None and not doc.text.strip():
                doc, reason = None, "no text (empty)"
            if doc is None:
                result.skipped.append(Skipped(source, reason))
                continue
            result.documents.append(doc)
            if head:
                result.bare[source] = rel
    return result
