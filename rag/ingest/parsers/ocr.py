"""OCR of page images with Tesseract, with a cache on disk.

Tesseract (Debian: ``apt-get install tesseract-ocr``) reads a page image (PNG on
its standard input) and writes hOCR: paragraphs, lines and words, each word with
its box in pixels and each line with Tesseract's estimate of its letter size
(``x_size``), which is steadier than word boxes (a word with descenders, or a URL's
slashes, is taller than one without). It is run as a command, one process a page with
``OMP_THREAD_LIMIT=1`` (its OpenMP threads spin against each other: on 2 cores a
page takes about 9x longer with them), pages in parallel, one a core. (pytesseract
wraps the same command but takes it from a module variable and passes the whole
process's environment: neither the command nor the threads could be set per call.)

A page's result is kept in ``OcrOptions.cache_dir`` under a key made of the file's
sha256, the page's index, the resolution, the language and Tesseract's version,
so an unchanged file is never read twice (re-ingests, ``rag doctor --rebuild``).

Used by ``rag.ingest.parsers.pdf`` for pages that are pictures of text."""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from rag.errors import IngestError
from rag.files import write_atomic
from rag.threads import cpu_threads

if TYPE_CHECKING:
    from PIL.Image import Image

log = logging.getLogger(__name__)

CACHE_FORMAT = "2"  # bumped when what is kept for a page changes
PAGE_TIMEOUT_S = 600  # one page; a dense A4 page at 300 dpi takes about 3 s on one core
INSTALL_HINT = ("install Tesseract (Debian/Ubuntu: sudo apt-get install tesseract-ocr; "
                "macOS: brew install tesseract), or set RAG_OCR_TESSERACT to its path")
OcrProgress = Callable[[str, int, int], None]  # (source, pages done, pages to read)


@dataclass(frozen=True)
class OcrOptions:
    """How pages are OCR'd: ``rag.settings.Settings`` ``ocr_*`` fields."""

    cache_dir: Path | None = None  # where page results are kept (None: not kept)
    lang: str = "eng"  # Tesseract language(s), "eng+deu"
    dpi: int = 300  # resolution pages are rendered at
    tesseract: str = "tesseract"  # the command
    progress: OcrProgress | None = None


class Word(NamedTuple):
    text: str
    left: int  # pixels, from the page's top left corner
    top: int
    width: int
    height: int


class Line(NamedTuple):
    size: float  # Tesseract's letter size of the line (x_size), in pixels
    words: list[Word]


Paragraph = list[Line]
_LINE_CLASSES = {"ocr_line", "ocr_header", "ocr_caption", "ocr_textfloat"}


@lru_cache(maxsize=8)
def tesseract_version(command: str) -> str | None:
    """Tesseract's version ("5.3.0"), None when the command is not there or fails."""
    path = shutil.which(command)
    if path is None:
        return None
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0].split()[-1] if out.returncode == 0 and first else None


@lru_cache(maxsize=8)
def _languages(command: str) -> frozenset[str]:
    try:
        out = subprocess.run([command, "--list-langs"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(line.strip() for line in out.stdout.splitlines()[1:] if line.strip())


def missing_language(options: OcrOptions) -> str | None:
    """The first of ``options.lang`` that Tesseract has no data for (None: all there)."""
    return next((lang for lang in options.lang.split("+") if lang not in _languages(options.tesseract)), None)


def language_hint(lang: str) -> str:
    return (f"OCR language {lang!r} is not installed for Tesseract "
            f"(Debian/Ubuntu: sudo apt-get install tesseract-ocr-{lang})")


def check_ready(options: OcrOptions, source: str) -> str:
    """Tesseract's version; IngestError naming ``source`` if it or a language is missing."""
    version = tesseract_version(options.tesseract)
    if version is None:
        raise IngestError(f"cannot read {source}: its pages are pictures of text and need OCR; {INSTALL_HINT}")
    lang = missing_language(options)
    if lang is not None:
        raise IngestError(f"cannot read {source}: {language_hint(lang)}")
    return version


def _tesseract_hocr(image: "Image", options: OcrOptions) -> bytes:
    png = io.BytesIO()
    image.save(png, "PNG", compress_level=1)
    command = [shutil.which(options.tesseract) or options.tesseract, "stdin", "stdout", "--dpi", str(options.dpi),
               "-l", options.lang, "hocr"]
    try:
        out = subprocess.run(command, input=png.getvalue(), capture_output=True, timeout=PAGE_TIMEOUT_S,
                             check=False, env={**os.environ, "OMP_THREAD_LIMIT": "1"})
    except subprocess.TimeoutExpired:
        raise IngestError(f"Tesseract took more than {PAGE_TIMEOUT_S} s") from None
    except OSError as exc:
        raise IngestError(f"Tesseract could not be run ({exc.strerror or exc})") from None
    if out.returncode != 0:
        said = " ".join(out.stderr.decode("utf-8", "replace").split())[-200:]
        raise IngestError(f"Tesseract failed (exit {out.returncode}: {said})")
    return out.stdout


def _title(element) -> dict[str, list[str]]:  # noqa: ANN001 - an lxml element
    """An hOCR ``title``: "bbox 1 2 3 4; x_size 42" -> {"bbox": [...], "x_size": [...]}."""
    fields = (part.split() for part in (element.get("title") or "").split(";"))
    return {f[0]: f[1:] for f in fields if f}


def _classes(element) -> set[str]:  # noqa: ANN001
    return set((element.get("class") or "").split())


def read_image(image: "Image", options: OcrOptions) -> list[Paragraph]:
    """The words Tesseract reads in ``image``, grouped as paragraphs of lines, in
    its reading order; lines it reads as rotated are left out."""
    import lxml.html

    root = lxml.html.fromstring(_tesseract_hocr(image, options))
    paragraphs: list[Paragraph] = []
    for par in root.iter():
        if "ocr_par" not in _classes(par):
            continue
        lines: Paragraph = []
        for line in par.iter():
            if not _LINE_CLASSES & _classes(line) or "textangle" in _title(line):
                continue  # (a line read as rotated: a margin stamp, a vertical label, or noise)
            words = []
            for word in line.iter():
                text = " ".join(word.text_content().split()) if "ocrx_word" in _classes(word) else ""
                box = _title(word).get("bbox", [])
                if text and len(box) == 4:
                    x0, y0, x1, y1 = map(int, box)
                    words.append(Word(text, x0, y0, x1 - x0, y1 - y0))
            size = _title(line).get("x_size", [])
            if words:
                lines.append(Line(float(size[0]) if size else float(max(w.height for w in words)), words))
        if lines:
            paragraphs.append(lines)
    return paragraphs


class PageReader:
    """OCR of one file's pages, through the cache."""

    def __init__(self, options: OcrOptions, file_sha256: str, version: str) -> None:
        self.options = options
        self.key = f"{file_sha256}-{options.dpi}-{options.lang}-{version}-{CACHE_FORMAT}"

    def _path(self, index: int) -> Path | None:
        folder = self.options.cache_dir
        return folder / "ocr" / self.key[:2] / f"{self.key}-p{index}.json" if folder else None

    def cached(self, index: int) -> list[Paragraph] | None:
        path = self._path(index)
        if path is None or not path.is_file():
            return None
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return [[Line(float(size), [Word(*w) for w in words]) for size, words in para] for para in raw]
        except (OSError, ValueError, TypeError):
            log.warning("OCR cache entry %s unreadable: reading the page again", path)
            return None

    def read_pages(self, indexes: Sequence[int], render: Callable[[int], "Image"],
                   done: Callable[[int], None] = lambda n: None) -> dict[int, list[Paragraph]]:
        """Each page (0-based) from the cache, else rendered and OCR'd, a page a
        core at a time; ``done`` is told how many pages are read so far."""
        out: dict[int, list[Paragraph]] = {}
        todo = []
        for index in indexes:
            found = self.cached(index)
            if found is None:
                todo.append(index)
            else:
                out[index] = found
        done(len(out))
        if todo:
            pool = ThreadPoolExecutor(max_workers=min(cpu_threads(), len(todo)), thread_name_prefix="ocr")
            try:
                futures = {pool.submit(self._read, index, render): index for index in todo}
                for future, index in futures.items():  # in page order: the first error is the first page's
                    out[index] = future.result()
                    done(len(out))
            finally:  # after an error or an interrupt, pages not started are not read
                pool.shutdown(wait=True, cancel_futures=True)
        return out

    def _read(self, index: int, render: Callable[[int], "Image"]) -> list[Paragraph]:
        try:
            paragraphs = read_image(render(index), self.options)
        except IngestError as exc:
            raise IngestError(f"page {index + 1}: {exc.message}") from None
        path = self._path(index)
        if path is not None:
            try:
                write_atomic(path, json.dumps(paragraphs).encode("utf-8"))
            except OSError as exc:  # a cache that cannot be written only costs time
                log.warning("cannot keep the OCR of a page in %s: %s", path.parent, exc)
        return paragraphs
