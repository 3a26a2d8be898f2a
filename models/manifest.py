"""Read ``manifest.json``: the models this project knows how to fetch and verify."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODELS_DIR = Path(__file__).resolve().parent
MANIFEST_PATH = MODELS_DIR / "manifest.json"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    file: str
    size: int
    sha256: str
    source: dict[str, Any] = field(default_factory=dict)
    architecture: str = ""
    license: str = ""

    @property
    def path(self) -> Path:
        return MODELS_DIR / self.file


@dataclass(frozen=True)
class RankerEntry:
    """The learned evidence ranker's files (committed in ``models/FOLDER``), each with its sha256."""

    folder: str
    files: dict[str, str]
    source: str = ""
    license: str = ""

    @property
    def path(self) -> Path:
        return MODELS_DIR / self.folder


def ranker_entry(path: Path = MANIFEST_PATH) -> RankerEntry:
    data = json.loads(path.read_text(encoding="utf-8"))
    return RankerEntry(**data["ranker"])


def load_manifest(path: Path = MANIFEST_PATH) -> tuple[str, list[ModelEntry]]:
    """Return (default model name, entries)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    entries = [ModelEntry(**m) for m in data["models"]]
    return data["default"], entries


def default_entry() -> ModelEntry:
    default, entries = load_manifest()
    for entry in entries:
        if entry.name == default:
            return entry
    raise KeyError(f"default model {default!r} is not in {MANIFEST_PATH}")


def default_model_path() -> Path:
    return default_entry().path
