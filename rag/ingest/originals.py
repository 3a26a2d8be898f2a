"""What the index was made from, kept in the data folder so that it can be made
again (``rag doctor --rebuild``) if it is damaged:

* ``uploads/``: a copy of every document added over HTTP, exactly as it was sent
  (the index is the only other place such a document lives), under the hash of
  its source name, with the name beside it; deleted with the document.
* ``ingested.json``: every folder or file given to ``rag ingest`` (absolute path)
  with its ``--prefix``; the documents themselves stay where the user keeps them.

Files are written whole or not at all (a temporary file renamed into place)."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from rag.files import write_atomic

log = logging.getLogger(__name__)

UPLOADS = "uploads"
NAME_SUFFIX = ".source"
INGESTED = "ingested.json"


@dataclass(frozen=True)
class IngestedPath:
    path: str  # absolute
    prefix: str | None  # as given to ``rag ingest --prefix`` (None: the folder's name)


def _digest(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def upload_path(data_dir: Path, source: str) -> Path:
    """Where the copy of an uploaded document lives: a file named by the hash of its
    source name (any name fits: no length, case or character limits of the file
    system), with the name itself beside it in ``<hash>.source``."""
    return data_dir / UPLOADS / _digest(source)


def save_upload(data_dir: Path, source: str, data: bytes) -> None:
    path = upload_path(data_dir, source)
    write_atomic(path, data)
    write_atomic(path.with_name(path.name + NAME_SUFFIX), source.encode("utf-8", "surrogatepass"))


def remove_upload(data_dir: Path, source: str) -> None:
    path = upload_path(data_dir, source)
    path.with_name(path.name + NAME_SUFFIX).unlink(missing_ok=True)
    path.unlink(missing_ok=True)


def uploads(data_dir: Path) -> list[tuple[str, Path]]:
    """Every kept upload: (its source name, its file)."""
    root = data_dir / UPLOADS
    kept = []
    for name_file in root.glob(f"*{NAME_SUFFIX}") if root.is_dir() else []:
        data = name_file.with_name(name_file.name[:-len(NAME_SUFFIX)])
        if data.is_file():
            kept.append((name_file.read_bytes().decode("utf-8", "surrogatepass"), data))
    return sorted(kept)


def ingested(data_dir: Path) -> list[IngestedPath]:
    try:
        items = json.loads((data_dir / INGESTED).read_text(encoding="utf-8"))
        return [IngestedPath(str(i["path"]), i.get("prefix")) for i in items]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s cannot be read (%s): the folders given to 'rag ingest' are not known", data_dir / INGESTED, exc)
        return []


def record_ingested(data_dir: Path, paths: list[Path], prefix: str | None) -> None:
    """Add the paths given to one ``rag ingest`` (absolute) to ``ingested.json``."""
    known = ingested(data_dir)
    for p in paths:
        entry = IngestedPath(str(Path(p).resolve()), prefix)
        if entry not in known:
            known.append(entry)
    body = json.dumps([{"path": e.path, "prefix": e.prefix} for e in known], indent=1)
    try:
        write_atomic(data_dir / INGESTED, body.encode("utf-8"))
    except OSError as exc:  # the index is written; only a later rebuild would miss the folder
        log.warning("could not record the ingested folders in %s: %s", data_dir / INGESTED, exc)
