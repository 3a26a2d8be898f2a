"""What the zip-based formats (DOCX, PPTX, EPUB) share: opening the container,
with one clear line for each way a file can be unusable, the refusal of a file
its library fails on, and an Office file's own title.

* a password-protected Office file is not a zip at all but an OLE compound file
  holding the encrypted package (``EncryptedPackage``), as is a Word 97-2003 file
  renamed to ``.docx``; both are refused as such;
* a truncated or damaged zip, a part that fails its CRC, or a missing required
  part ("it is damaged");
* a zip whose parts would unpack to more than ``MAX_UNPACKED`` bytes (a zip bomb)."""

from __future__ import annotations

import io
import logging
import zipfile

from lxml import etree

from rag.errors import IngestError

log = logging.getLogger(__name__)

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # compound file: encrypted OOXML, or a .doc/.ppt
MAX_UNPACKED = 1 << 30  # 1 GiB of parts: far beyond any document's text, well short of a bomb
_DC_TITLE = "{http://purl.org/dc/elements/1.1/}title"


def open_container(data: bytes, source: str, kind: str, required: tuple[str, ...]) -> zipfile.ZipFile:
    """The zip of a ``kind`` file ("Word", "PowerPoint", "EPUB"), checked whole;
    IngestError naming ``source`` with the reason it cannot be read."""
    def refuse(reason: str) -> IngestError:
        return IngestError(f"cannot read {source}: {reason}")

    if data.startswith(OLE_MAGIC):
        raise refuse(f"it is password-protected (encrypted) or an old binary {kind} file; "
                     f"save it again without a password in the current format")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError):
        raise refuse(f"it is damaged (not a complete {kind} file: the zip container cannot be read)") from None
    try:
        names = set(zf.namelist())
        missing = [part for part in required if part not in names]
        if missing:
            raise refuse(f"it is damaged (not a complete {kind} file: {missing[0]} is missing)")
        if sum(info.file_size for info in zf.infolist()) > MAX_UNPACKED:
            raise refuse(f"its parts would unpack to more than {MAX_UNPACKED >> 20} MiB")
        bad = zf.testzip()
        if bad is not None:
            raise refuse(f"it is damaged ({bad} fails its checksum)")
    except IngestError:
        zf.close()
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError) as exc:
        zf.close()
        raise refuse(f"it is damaged ({' '.join(str(exc).split()) or type(exc).__name__})") from None
    return zf


def read_member(zf: zipfile.ZipFile, name: str) -> bytes | None:
    """A part's bytes, None if the container has no such part."""
    try:
        return zf.read(name)
    except KeyError:
        return None


def damaged(source: str, exc: BaseException) -> IngestError:
    """The refusal of a file that its library (mammoth, python-pptx, EbookLib) failed
    on, in many ways on a damaged part: the exception in one line."""
    log.debug("reading %s failed", source, exc_info=exc)
    return IngestError(f"cannot read {source}: it is damaged ({type(exc).__name__}: "
                       f"{' '.join(str(exc).split())[:200]})")


def office_title(zf: zipfile.ZipFile) -> str:
    """``dc:title`` of an Office file's core properties ("" if none or unreadable)."""
    raw = read_member(zf, "docProps/core.xml")
    if not raw:
        return ""
    try:
        root = etree.fromstring(raw, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return ""
    node = root.find(_DC_TITLE)
    return " ".join((node.text or "").split()) if node is not None else ""
