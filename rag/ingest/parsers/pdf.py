"""PDF: layout-aware text with paragraphs, headings, code and page numbers.

PDFium (``pypdfium2``) gives each character with its box, baseline, font size and
font name, fast (a 21-page manual in about 0.2 s), and places word spaces and line
ends well, also where TeX leaves no space glyphs. From there:

1. Lines: PDFium's line ends, plus a break where the next glyph lies half a font
   size lower and further left. Bold and monospaced come from the font name
   ("Bold", TeX's BX; Courier, "Mono", TeX's TT) or the font flags.
2. Dropped: lines in the two top/bottom rows of a page, in its top/bottom 12 %,
   that are a bare page number ("7", "Page 7 of 9", "xii"), start or end with the
   page number (one that counts on with the pages: "Chapter 2: Usage 7"), or whose
   text (digits as #) is there on several pages (2 of 2-4, 3 of 5-6, else 4).
   Margin notes (right of the body column, "New feature 2022/06/01") are ``meta``.
3. Line kinds: code (85 % monospaced); heading (a short line with a letter, no final
   full stop unless numbered, no table-of-contents line, 15 % larger than the most
   used size or bold); else text. Paragraphs end where the kind or size changes, the
   baseline step exceeds 1.2 line spacings (code: 2.6, blank lines kept) or goes up,
   the left edge moves (the second line may hang further in: a list item), the line
   before ends a sentence well short of the margin, or a list item starts. A code
   font line right below a full prose line, without a gap, is prose.
4. Blocks: prose lines are joined by single spaces (a line break is never a sentence
   end); code keeps line breaks and indentation (columns from glyph positions); a
   code font paragraph set left of the body margin (an API signature) is a ``term``,
   a bulleted one an ``item``. Heading levels come from size, then numbering depth;
   a lone largest heading on page 1 is the title and stays out of section paths.
   Blocks never cross a page, except a text paragraph that goes on at the top of the
   next page (same size and indentation; no sentence end before, or lower case after).

Hyphenation: a line ending in "-" after a non-space, in text font (TeX does not
hyphenate typewriter text), joins the next one without a space. The hyphen goes
("docu-ment" -> "document") only when the next line starts in lower case and the
piece before it ends in a letter, is not capitalised ("Anglo-saxon"), has no digit
("x86-based"), and is no compound the document writes elsewhere with its hyphen
but never without ("case-changing"); so "--" and "1990-" keep theirs.

Pictures of text (scanned pages): a page whose text layer has fewer than
``OCR_MAX_CHARS`` characters and which a picture covers for at least
``OCR_MIN_PICTURE`` of its area is rendered at ``OcrOptions.dpi`` and read by
Tesseract (``rag.ingest.parsers.ocr``). Its words become lines, grouped in
Tesseract's paragraphs; a short paragraph without a final full stop whose letters
(Tesseract's letter size of its lines) are 15 % larger than most is a heading
(headings within 32 % of each other's size are one level, ordered by their
numbering: OCR'd sizes wobble as much as that); lines read as rotated are left
out; running headers and page numbers go as on other pages. Such pages are listed
in ``Document.ocr_pages``. Without Tesseract, a PDF most of whose pages are
pictures is refused with how to install it; one with a few such pages is read
without them, with a warning.

PDFium is not thread-safe: reading and rendering hold a module lock (OCR does not).
"""

from __future__ import annotations

import ctypes
import dataclasses
import hashlib
import logging
import math
import re
import statistics
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from rag.ingest.document import Block, Document
from rag.errors import IngestError
from rag.ingest.parsers.ocr import INSTALL_HINT, OcrOptions, PageReader, Paragraph, check_ready, tesseract_version

log = logging.getLogger(__name__)

MARGIN_SHARE = 0.12  # header/footer band at the top and bottom of a page
HEADING_SCALE = 1.15  # a heading is set at least this much larger than body text
GAP_FACTOR = 1.2  # a baseline step this many line spacings apart ends a paragraph
CODE_GAP_FACTOR = 2.6  # code keeps blank lines up to this step
MONO_SHARE = 0.85
OCR_MAX_CHARS = 100  # a page with fewer characters of text ...
OCR_MIN_PICTURE = 0.5  # ... and a picture over this share of its area is a picture of text

_MONO_FONT = re.compile(r"(?i:courier|mono|consol|menlo|typewriter|cursor|nimbusmon|sourcecode|firacode)"
                        r"|TT\d|CMTT|SFTT|LMTT")
_BOLD_FONT = re.compile(r"(?i:bold|black|heavy|demi)|BX\d|CMB\d")
_PAGE_NUMBER = re.compile(r"(?i)[-–—\s]*(?:page\s+)?(?:\d{1,4}|[ivxlc]{1,6})(?:\s*(?:/|of)\s*\d{1,4})?[-–—\s]*")
_TOC_LINE = re.compile(r"(?:\.\s*){4,}\S+$|^\d+(?:\.\d+)*\.?\s+.*\D\s+\d+$")
_NUMBERED = re.compile(r"(\d+(?:\.\d+)*|[A-Z](?:\.\d+)+)\.?\s+\S")
_ITEM_START = re.compile(r"(?:[•‣◦▪∙·*–-]|\(?\d{1,3}[.)]|\(?[a-z][.)]|\([ivx]{1,4}\))\s")
_WORD = re.compile(r"[^\W\d_][\w-]*[^\W_]|[^\W\d_]")
_SENTENCE_END = re.compile(r"[.!?:][\"'”’)\]]*$")
_FIXES = {"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl",
          "\ufb05": "st", "\ufb06": "st", "\x02": "-", "\ufffe": "-", "\xad": "-"}
_SPACE = (" ", 0.0, 0.0, False, False, 0.0, 0.0)
_LOCK = threading.Lock()

_Glyph = tuple[str, float, float, bool, bool, float, float]  # text, x0, x1, mono, bold, size, baseline


@dataclass
class _Line:
    glyphs: list[_Glyph]
    text: str
    x0: float
    x1: float
    base: float  # baseline, from the top of the page
    size: float
    mono: float  # share of glyphs
    bold: float
    kind: str = "text"


@dataclass
class _Para:
    kind: str
    lines: list[_Line]
    page: int
    cont: list[tuple[int, list[_Line]]] = field(default_factory=list)  # (page, lines) it goes on with


def _line(glyphs: list[_Glyph]) -> _Line | None:
    marks = [g for g in glyphs if g[0].strip()]
    text = re.sub(r" +", " ", "".join(g[0] for g in glyphs)).strip()
    if not marks or not text:
        return None
    size = Counter(g[5] for g in marks).most_common(1)[0][0]
    return _Line(glyphs, text, min(g[1] for g in marks), max(g[2] for g in marks),
                 statistics.median(g[6] for g in marks if g[5] == size), size,
                 sum(g[3] for g in marks) / len(marks), sum(g[4] for g in marks) / len(marks))


def _page_lines(page: pdfium.PdfPage, cache: dict[tuple[bytes, int], tuple[bool, bool]]) -> list[_Line]:
    """The lines of one page in PDFium's reading order."""
    textpage = page.get_textpage()
    raw, height = textpage.raw, page.get_height()
    buf, flags, matrix = ctypes.create_string_buffer(128), ctypes.c_int(), pdfium_c.FS_MATRIX()
    left, right, bottom, top, ox, oy = (ctypes.c_double() for _ in range(6))
    rows: list[list[_Glyph]] = [[]]
    prev: _Glyph | None = None
    try:
        for i in range(pdfium_c.FPDFText_CountChars(raw)):
            ch = chr(pdfium_c.FPDFText_GetUnicode(raw, i))
            if ch in "\r\n":
                rows.append([])
                continue
            if ch.isspace() or ch == "\ufeff":
                rows[-1].append(_SPACE)
                continue
            pdfium_c.FPDFText_GetCharBox(raw, i, left, right, bottom, top)
            pdfium_c.FPDFText_GetCharOrigin(raw, i, ox, oy)
            pdfium_c.FPDFText_GetMatrix(raw, i, matrix)  # a size set as "1 Tf" is scaled here
            size = round(pdfium_c.FPDFText_GetFontSize(raw, i) * math.hypot(matrix.c, matrix.d), 1)
            base = height - oy.value
            if prev and base > prev[6] + 0.5 * size and left.value < prev[2]:
                rows.append([])
            pdfium_c.FPDFText_GetFontInfo(raw, i, buf, len(buf), flags)
            if (buf.value, flags.value) not in cache:  # (monospaced, bold) by font name and flags
                name = buf.value.decode("latin-1")
                cache[buf.value, flags.value] = (bool(_MONO_FONT.search(name) or flags.value & 1),
                                                 bool(_BOLD_FONT.search(name) or flags.value & 0x40000))
            mono, bold = cache[buf.value, flags.value]
            text = _FIXES.get(ch, ch) if ch.isprintable() or ch in _FIXES else ""
            prev = (text, left.value, right.value, mono, bold, size, base)
            rows[-1].append(prev)
    finally:
        textpage.close()
    return [line for line in map(_line, rows) if line]


def _body_size(sized: Iterable[tuple[float, int]]) -> float:
    """The size that most of the text is set in: (size, weight) pairs summed by size."""
    weights: Counter[float] = Counter()
    for size, weight in sized:
        weights[size] += weight
    return weights.most_common(1)[0][0] if weights else 10.0


def _drop_margins(pages: list[list[_Line]], heights: list[float]) -> None:
    """Remove running headers/footers and bare page numbers (in place)."""
    def candidates(p: int) -> list[_Line]:
        lines, h = pages[p], heights[p]
        rows = sorted({round(ln.base) for ln in lines})
        edge = set(rows[:2] + rows[-2:])  # the two top and the two bottom rows of the page
        return [ln for ln in lines if round(ln.base) in edge
                and (ln.base < MARGIN_SHARE * h or ln.base > (1 - MARGIN_SHARE) * h)]

    def key(line: _Line) -> str:
        return re.sub(r"\d+", "#", line.text.lower())

    body = _body_size((ln.size, len(ln.glyphs)) for lines in pages for ln in lines)

    def folio(p: int, line: _Line) -> int | None:  # a page number at either end, less the page index
        if line.size >= body * HEADING_SCALE or line.bold >= 0.9:
            return None  # set like a heading: "1 Introduction" atop page 1, "2 Methods" atop page 2
        m = re.match(r"(\d{1,4})\s", line.text) or re.search(r"\s(\d{1,4})$", line.text)
        return int(m.group(1)) - p if m else None

    edges = [candidates(p) for p in range(len(pages))]
    counts = Counter(k for lines in edges for k in {key(ln) for ln in lines})
    shifts = Counter(folio(p, ln) for p, lines in enumerate(edges) for ln in lines)
    shifts.pop(None, None)
    need = max(2, min(4, (len(pages) + 1) // 2))
    shift = next((s for s, n in shifts.most_common(1) if n >= need), None)
    for p, lines in enumerate(edges):
        drop = {id(ln) for ln in lines if _PAGE_NUMBER.fullmatch(ln.text) or counts[key(ln)] >= need
                or (shift is not None and folio(p, ln) == shift)}
        pages[p] = [ln for ln in pages[p] if id(ln) not in drop]


def _classify(line: _Line, body: float) -> str:
    text = line.text
    if line.mono >= MONO_SHARE and next(g for g in line.glyphs if g[0].strip())[3]:
        return "code"  # (a bullet in text font before code font words starts a list item)
    if (not re.search(r"[^\W\d_]", text) or len(text) > 150 or _TOC_LINE.search(text)
            or (text.rstrip("∗*†‡ ").endswith(".") and not _NUMBERED.match(text))):
        return "text"
    big = line.size >= body * HEADING_SCALE
    return "heading" if big or (line.bold >= 0.9 and len(text.split()) <= 12) else "text"


def _breaks(para: list[_Line], line: _Line, spacing: float, right: float) -> bool:
    """Whether ``line`` starts a new paragraph after the lines in ``para``."""
    prev = para[-1]
    if line.kind != prev.kind or abs(line.size - prev.size) > 0.6:
        return True
    step = line.base - prev.base
    limit = (CODE_GAP_FACTOR if prev.kind == "code" else GAP_FACTOR) * spacing * prev.size
    if step < 0.3 * prev.size or step > limit:
        return True
    if prev.kind in ("code", "heading"):
        return prev.kind == "heading" and len(para) >= 3
    if _ITEM_START.match(line.text + " ") or _TOC_LINE.search(prev.text) or _TOC_LINE.search(line.text):
        return True
    if abs(line.x0 - para[1].x0) > 0.3 * prev.size if len(para) >= 2 else line.x0 < prev.x0 - 3 * prev.size:
        return True
    return prev.x1 < right - 2 * prev.size and bool(_SENTENCE_END.search(prev.text))


def _inline_code(para: list[_Line], line: _Line, spacing: float, right: float) -> bool:
    """A monospaced line right below a full prose line, same size and left edge."""
    prev = para[-1]
    margin = para[1].x0 if len(para) > 1 else prev.x0
    return (line.kind == "code" and prev.kind in ("text", "item") and line.size == prev.size
            and prev.x1 >= right - 2 * prev.size and abs(line.x0 - margin) <= 0.3 * prev.size
            and 0 < line.base - prev.base <= GAP_FACTOR * spacing * prev.size)


def _margins(pages: list[list[_Line]]) -> tuple[float, float]:
    """The left edge most body lines have, and the right edge of the body column."""
    xs = Counter(round(ln.x0) for lines in pages for ln in lines)
    ends = sorted(ln.x1 for lines in pages for ln in lines)
    return (xs.most_common(1)[0][0] if xs else 0.0), (ends[int(0.9 * (len(ends) - 1))] if ends else 1e9)


def _split_notes(lines: list[_Line], right: float) -> list[_Line]:
    """Mark margin notes (right of the body column) as ``meta`` lines, also where
    PDFium put one at the end of a body line."""
    out = []
    for ln in lines:
        marks = [i for i, g in enumerate(ln.glyphs) if g[0].strip()]
        cut = next((i for a, i in zip(marks, marks[1:]) if ln.glyphs[i][1] > right + 0.5 * ln.size
                    and ln.glyphs[i][1] - ln.glyphs[a][2] > ln.size), None)
        parts = [_line(ln.glyphs[:cut]), _line(ln.glyphs[cut:])] if cut else [ln]
        for part in filter(None, parts):
            part.kind = "meta" if part.x0 > right + 0.5 * part.size else ln.kind
            out.append(part)
    return out


def _paragraphs(pages: list[list[_Line]]) -> tuple[list[_Para], list[float], float]:
    """Each page's lines grouped into paragraphs; also each page's body left edge
    and the normal line spacing (in font sizes)."""
    body = _body_size((ln.size, len(ln.glyphs)) for lines in pages for ln in lines)
    for ln in (ln for lines in pages for ln in lines):
        ln.kind = _classify(ln, body)
    steps = [(b.base - a.base) / body for lines in pages for a, b in zip(lines, lines[1:])
             if a.size == b.size == body and a.kind == b.kind == "text" and 0 < b.base - a.base < 3 * body]
    spacing = statistics.median(steps) if steps else 1.2
    body_lines = [[ln for ln in lines if ln.kind == "text" and ln.size == body] for lines in pages]
    edges = [_margins(body_lines[p % 2::2]) for p in range(2)]  # odd and even pages
    paras: list[_Para] = []
    for p, lines in enumerate(pages):
        right, current = edges[p % 2][1], None
        for ln in _split_notes(lines, right):
            last = paras[-1] if paras and paras[-1].page == p else None
            if ln.kind == "meta" and last and last.kind == "meta" and 0 < ln.base - last.lines[-1].base < 2 * ln.size:
                last.lines.append(ln)
            elif ln.kind == "meta":
                paras.append(_Para("meta", [ln], p))
            elif current and (_inline_code(current.lines, ln, spacing, right)
                              or not _breaks(current.lines, ln, spacing, right)):
                ln.kind = current.lines[-1].kind
                current.lines.append(ln)
            else:
                current = _Para(ln.kind, [ln], p)
                paras.append(current)
    lefts = [edges[p % 2][0] for p in range(len(pages))]
    for para in paras:
        first = para.lines[0]
        if para.kind in ("code", "text") and first.x0 < lefts[para.page] - 0.5 * first.size \
                and next(g for g in first.glyphs if g[0].strip())[3]:
            para.kind = "term"  # an outdented line that starts in code font: an API signature
        elif para.kind == "heading" and _TOC_LINE.search(" ".join(ln.text for ln in para.lines)):
            para.kind = "text"
        elif para.kind == "text" and _ITEM_START.match(first.text + " "):
            para.kind = "item"
    return paras, lefts, spacing


def _merge_pages(paras: list[_Para], lefts: list[float]) -> list[_Para]:
    """Join a text paragraph that goes on at the top of the next page."""
    out: list[_Para] = []
    for para in paras:
        prev = out[-1] if out else None
        if prev and prev.kind in ("text", "item") and para.kind == "text":
            last_page, lines = prev.cont[-1] if prev.cont else (prev.page, prev.lines)
            last, first = lines[-1], para.lines[0]
            indent = (first.x0 - lefts[para.page]) - (last.x0 - lefts[last_page])
            goes_on = not _SENTENCE_END.search(last.text) or first.text[:1].islower()
            if para.page == last_page + 1 and abs(indent) <= 0.3 * last.size and first.size == last.size \
                    and goes_on:
                prev.cont.append((para.page, para.lines))
                continue
        out.append(para)
    return out


def _join_prose(lines: list[_Line], vocab: set[str], sep: str = " ") -> tuple[str, list[int]]:
    """Lines joined by ``sep`` with the hyphenation rule (module docstring), and
    the offset of each line in the result."""
    text, starts = "", []
    for i, line in enumerate(lines):
        mono = i and next(g for g in reversed(lines[i - 1].glyphs) if g[0].strip())[3]
        if i and text.endswith("-") and not text.endswith(" -") and not mono:
            word, m = text.rsplit(" ", 1)[-1][:-1], _WORD.match(line.text)
            nxt = m.group() if m else ""
            compound = f"{word}-{nxt}".lower() in vocab and f"{word}{nxt}".lower() not in vocab
            if (line.text[:1].islower() and word[-1:].isalpha() and not word[:1].isupper()
                    and not any(c.isdigit() for c in word) and not compound):
                text = text[:-1]
        elif i:
            text += sep
        starts.append(len(text))
        text += line.text
    return text, starts


def _code_text(lines: list[_Line], spacing: float) -> str:
    """Code lines with their breaks, indentation and blank lines (columns from x)."""
    steps = [b[1] - a[1] for ln in lines for a, b in zip(ln.glyphs, ln.glyphs[1:])
             if a[0].strip() and b[0].strip() and b[1] > a[1]]
    adv = statistics.median(steps) if steps else 0.6 * lines[0].size
    x0 = min(ln.x0 for ln in lines)
    rows = []
    for i, ln in enumerate(lines):
        if i:
            rows.extend([""] * max(0, round((ln.base - lines[i - 1].base) / (spacing * ln.size)) - 1))
        row = ""
        for g in ln.glyphs:
            if g[0].strip():
                row += " " * max(0, round((g[1] - x0) / adv) - len(row)) + g[0]
        rows.append(row.rstrip())
    return "\n".join(rows)


def _assemble(paras: list[_Para], n_pages: int, spacing: float, source: str) -> Document:
    heads = [p for p in paras if p.kind == "heading"]
    sizes = sorted({p.lines[0].size for p in heads}, reverse=True)
    top = [p for p in heads if p.lines[0].size == sizes[0]] if sizes else []
    title = top[0] if len(top) == 1 and top[0].page == 0 and len(heads) > 1 else None
    parts: list[str] = []
    blocks: list[Block] = []
    firsts: dict[int, int] = {}  # page -> offset of its first character
    stack: list[tuple[tuple[int, int], str]] = []
    vocab = {w.lower() for p in paras for ln in p.lines + [x for _, more in p.cont for x in more]
             for w in _WORD.findall(ln.text.rstrip("-"))}
    pos = 0
    for para in paras:
        pos += 2 * bool(parts)  # the blank line before this block
        if para.kind == "code":
            text = _code_text(para.lines, spacing)
        else:
            lines = para.lines + [ln for _, more in para.cont for ln in more]
            text, starts = _join_prose(lines, vocab, "\n" if para.kind == "term" else " ")
            index = len(para.lines)
            for page, more in para.cont:
                firsts[page] = pos + starts[index]
                index += len(more)
        section = " > ".join(name for _, name in stack)
        if para.kind == "heading":
            name = " ".join(text.split())
            if para is not title:
                m = _NUMBERED.match(name)  # level: font size first, then numbering depth
                level = (sizes.index(para.lines[0].size), m.group(1).count(".") + 1 if m else 1)
                while stack and stack[-1][0] >= level:
                    stack.pop()
                stack.append((level, name))
            section = name if para is title else " > ".join(name for _, name in stack)
        firsts.setdefault(para.page, pos)
        blocks.append(Block(pos, pos + len(text), para.kind, section, para.page + 1))
        parts.append(text)
        pos += len(text)
    page_starts, nxt = [0] * n_pages, pos
    for p in range(n_pages - 1, 0, -1):  # a page without text starts where the next one does
        nxt = page_starts[p] = firsts.get(p, nxt)
    return Document(source, "\n\n".join(parts), tuple(blocks), tuple(page_starts))


# titles that tools write by default, not the author: "untitled", a file name
_PLACEHOLDER_TITLE = re.compile(r"^(?:untitled.*|.*\.(?:docx?|odt|rtf|tex|dvi|ps|pdf|txt|indd|pages|key|pptx?))$",
                                re.I)


def _metadata_title(pdf: "pdfium.PdfDocument") -> str:
    """The Title of the PDF's document information ("" if none, a tool's
    placeholder, or unreadable)."""
    try:
        title = " ".join(str(pdf.get_metadata_dict(skip_empty=True).get("Title", "")).split())
    except Exception:  # noqa: BLE001 - a damaged info dictionary only costs the title
        return ""
    return "" if _PLACEHOLDER_TITLE.match(title) else title


def _picture_share(page: pdfium.PdfPage) -> float:
    """The share of the page's area its largest picture covers."""
    area = max(page.get_width() * page.get_height(), 1.0)
    best = 0.0
    for obj in page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,), max_depth=4):
        left, bottom, right, top = obj.get_bounds()
        best = max(best, abs(right - left) * abs(top - bottom) / area)
    return min(best, 1.0)


def _read_pages(data: bytes, source: str) -> tuple[list[list[_Line]], list[float], str, list[int]]:
    """Each page's lines and height, the metadata title, and the pages (0-based)
    that are pictures of text."""
    with _LOCK:
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            reason = "it is encrypted" if "password" in str(exc).lower() else "it is not a readable PDF"
            raise IngestError(f"cannot read {source}: {reason}") from None
        try:
            pages: list[list[_Line]] = []
            heights: list[float] = []
            scanned: list[int] = []
            cache: dict[tuple[bytes, int], tuple[bool, bool]] = {}
            for i in range(len(pdf)):
                page = pdf[i]
                pages.append(_page_lines(page, cache))
                heights.append(page.get_height())
                chars = sum(len(ln.text.replace(" ", "")) for ln in pages[-1])
                if chars < OCR_MAX_CHARS and _picture_share(page) >= OCR_MIN_PICTURE:
                    scanned.append(i)
                page.close()  # (closing the document closes any left open)
            return pages, heights, _metadata_title(pdf), scanned
        except pdfium.PdfiumError as exc:
            raise IngestError(f"cannot read {source}: {' '.join(str(exc).split())}") from None
        finally:
            pdf.close()


def _render(data: bytes, index: int, dpi: int):  # noqa: ANN202 - a PIL image
    """Page ``index`` as a grey-scale picture at ``dpi``."""
    with _LOCK:
        pdf = pdfium.PdfDocument(data)
        try:
            page = pdf[index]
            return page.render(scale=dpi / 72, grayscale=True).to_pil()
        finally:
            pdf.close()


def _ocr_lines(paragraphs: list[Paragraph], dpi: int) -> list[list[_Line]]:
    """Tesseract's paragraphs as lines in points (one glyph per word); every line
    of a paragraph has the paragraph's median letter size (Tesseract's) as its size."""
    scale = 72 / dpi
    out = []
    for para in paragraphs:
        size = round(2 * scale * statistics.median(line.size for line in para)) / 2
        lines = []
        for line_words in (line.words for line in para):
            glyphs: list[_Glyph] = []
            base = scale * statistics.median(w.top + w.height for w in line_words)
            for w in line_words:
                glyphs += [_SPACE] if glyphs else []
                glyphs.append((w.text, scale * w.left, scale * (w.left + w.width), False, False, size, base))
            line = _line(glyphs)
            if line:
                lines.append(line)
        if lines:
            out.append(lines)
    return out


def _ocr_paragraphs(groups: list[tuple[int, list[_Line]]]) -> list[_Para]:
    """OCR'd (page, lines) groups as paragraphs: a heading when short, without a
    final full stop (unless numbered) and taller than most; else text or item."""
    body = _body_size((lines[0].size, sum(len(ln.text.split()) for ln in lines)) for _, lines in groups)
    paras = []
    for page, lines in groups:
        text = " ".join(ln.text for ln in lines)
        first = lines[0]
        if (len(lines) <= 2 and len(text.split()) <= 12 and re.search(r"[^\W\d_]", text)
                and (not text.endswith(".") or _NUMBERED.match(text)) and first.size >= body * HEADING_SCALE):
            kind = "heading"
        else:
            kind = "item" if _ITEM_START.match(first.text + " ") else "text"
        for ln in lines:
            ln.kind = kind
        paras.append(_Para(kind, lines, page))
    _snap_heading_sizes([p for p in paras if p.kind == "heading"])
    return paras


def _snap_heading_sizes(heads: list[_Para]) -> None:
    """OCR'd letter sizes wobble by 10-20 %, as much as a section heading differs
    from a chapter's: headings within ``HEADING_SCALE`` squared (1.32) of the
    largest of their group get its size, one level (numbering then orders them)."""
    group: float | None = None
    for para in sorted(heads, key=lambda p: -p.lines[0].size):
        size = para.lines[0].size
        if group is None or size * HEADING_SCALE ** 2 <= group:
            group = size
        for ln in para.lines:
            ln.size = group


def _read_scanned(data: bytes, source: str, pages: list[list[_Line]], scanned: list[int],
                  ocr: OcrOptions, warnings: list[str]) -> tuple[dict[int, int], list[int]]:
    """OCR the pictures of text into ``pages`` (in place); the paragraph each OCR'd
    line belongs to (by ``id``), and the pages read."""
    version = tesseract_version(ocr.tesseract)
    if version is None and 2 * len(scanned) < len(pages):
        warnings.append(f"{source}: {len(scanned)} of its {len(pages)} pages are pictures of text and were "
                        f"left out (no OCR); {INSTALL_HINT}")
        return {}, []
    version = check_ready(ocr, source)
    reader = PageReader(ocr, hashlib.sha256(data).hexdigest(), version)
    progress = ocr.progress
    try:
        read = reader.read_pages(scanned, lambda index: _render(data, index, ocr.dpi),
                                 (lambda n: progress(source, n, len(scanned))) if progress else (lambda n: None))
    except IngestError as exc:
        raise IngestError(f"cannot read {source}: {exc.message}") from None
    owner: dict[int, int] = {}
    counter = 0
    for index in scanned:
        pages[index] = []
        for lines in _ocr_lines(read[index], ocr.dpi):
            for ln in lines:
                owner[id(ln)] = counter
            pages[index] += lines
            counter += 1
    return owner, scanned


def parse_pdf(data: bytes, source: str, ocr: OcrOptions | None = None,
              warnings: list[str] | None = None) -> Document:
    """Parse PDF bytes into a ``Document`` with typed blocks and page offsets,
    pictures of text read by OCR (``ocr``: how; default settings without a cache);
    IngestError for an unreadable, encrypted or corrupt file."""
    pages, heights, title, scanned = _read_pages(data, source)
    owner, read = _read_scanned(data, source, pages, scanned, ocr or OcrOptions(),
                                warnings if warnings is not None else []) if scanned else ({}, [])
    _drop_margins(pages, heights)
    groups: dict[int, tuple[int, list[_Line]]] = {}
    for index in read:  # the OCR'd lines that stay, back in their paragraphs
        for ln in pages[index]:
            groups.setdefault(owner[id(ln)], (index, []))[1].append(ln)
        pages[index] = []
    paras, lefts, spacing = _paragraphs(pages)
    paras = sorted(paras + _ocr_paragraphs(list(groups.values())), key=lambda p: p.page)  # (stable)
    doc = dataclasses.replace(_assemble(_merge_pages(paras, lefts), len(pages), spacing, source), title=title,
                              ocr_pages=frozenset(i + 1 for i in read))
    log.debug("parsed %s: %d pages (%d by OCR), %d blocks, %d characters", source, len(pages), len(read),
              len(doc.blocks), len(doc.text))
    return doc
