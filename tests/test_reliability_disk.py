"""A real full disk: the data folder on a small tmpfs, mounted in a private mount
namespace (``unshare --user --map-root-user --mount``: no root needed where user
namespaces are allowed; skipped, saying why, where they are not), nearly filled,
then ``rag ingest`` of more than fits. Every step runs as its own ``rag`` process,
as a user would run it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.articles import write_articles
from tests.conftest import SEEDS

BIN = Path(sys.executable).parent


def _namespaces_work(tmp: Path) -> str | None:
    """None if a tmpfs can be mounted in a private namespace here, else why not."""
    if shutil.which("unshare") is None:
        return "no unshare command"
    point = tmp / "probe"
    point.mkdir()
    done = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=1m tmpfs {point}"],
                          capture_output=True, text=True, timeout=30)
    return None if done.returncode == 0 else f"cannot mount a tmpfs in a user namespace: {done.stderr.strip()}"


SCRIPT = textwrap.dedent("""\
    set -u
    M="$1"; OUT="$2"; FREE_KB="$3"; RAG="$4"; SEEDS="$5"; MORE="$6"; LATER="$7"
    export HF_HUB_OFFLINE=1
    mount -t tmpfs -o size=64m tmpfs "$M" || exit 99
    step() {  # name, then the command: its exit status, stdout and stderr in $OUT
        name="$1"; shift
        "$@" > "$OUT/$name.out" 2> "$OUT/$name.err"; echo $? > "$OUT/$name.rc"
    }
    step seeds "$RAG" ingest "$SEEDS" --data-dir "$M/data" --json
    avail=$(df -k --output=avail "$M" | tail -1)
    dd if=/dev/zero of="$M/filler" bs=1k count=$((avail - FREE_KB)) status=none
    df -k --output=avail "$M" | tail -1 > "$OUT/free_kb"
    step full "$RAG" ingest "$MORE" --data-dir "$M/data" --json
    step list_full "$RAG" list --data-dir "$M/data" --json
    step search_full "$RAG" search "Meta Llama military use" --data-dir "$M/data" --json
    step doctor_full "$RAG" doctor --data-dir "$M/data"
    rm "$M/filler"
    step again "$RAG" ingest "$MORE" --data-dir "$M/data" --json
    step list_after "$RAG" list --data-dir "$M/data" --json
    step search_after "$RAG" search "lighthouse keeper ledger" --data-dir "$M/data" --json
    step doctor_after "$RAG" doctor --data-dir "$M/data"
    # the disk fills while a write goes on: once its first batch is stored, by another file
    "$RAG" -v ingest "$LATER" --data-dir "$M/data" --json > "$OUT/during.out" 2> "$OUT/during.log" &
    pid=$!
    for _ in $(seq 1 600); do grep -q "stored 512 of" "$OUT/during.log" && break; sleep 0.1; done
    avail=$(df -k --output=avail "$M" | tail -1)
    dd if=/dev/zero of="$M/filler" bs=1k count=$((avail - 300)) status=none
    wait $pid; echo $? > "$OUT/during.rc"
    step list_during "$RAG" list --data-dir "$M/data" --json
    step search_during "$RAG" search "Meta Llama military use" --data-dir "$M/data" --json
    rm "$M/filler"
    step resumed "$RAG" ingest "$LATER" --data-dir "$M/data" --json
    step list_resumed "$RAG" list --data-dir "$M/data" --json
    step doctor_resumed "$RAG" doctor --data-dir "$M/data"
    """)


@pytest.mark.slow
@pytest.mark.parametrize("free_kb", [6000])  # the case: Chroma's vector index files left empty
def test_a_full_disk_stops_writes_in_one_line_and_loses_nothing(tmp_path: Path, free_kb: int) -> None:
    why = _namespaces_work(tmp_path)
    if why:
        pytest.skip(why)
    mount, out = tmp_path / "mnt", tmp_path / "out"
    mount.mkdir()
    out.mkdir()
    (tmp_path / "run.sh").write_text(SCRIPT, encoding="utf-8")
    more = write_articles(tmp_path / "more", 30)  # about 600 records: more than a nearly full disk takes
    later = write_articles(tmp_path / "later", 40)  # about 800 records: two batches
    done = subprocess.run(["unshare", "-rm", "bash", str(tmp_path / "run.sh"), str(mount), str(out), str(free_kb),
                           str(BIN / "rag"), str(SEEDS), str(more), str(later)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr

    def rc(step: str) -> int:
        return int((out / f"{step}.rc").read_text())

    def said(step: str, stream: str = "err") -> str:
        return (out / f"{step}.{stream}").read_text()

    def sources(step: str) -> set[str]:
        return {d["source"] for d in json.loads(said(step, "out"))["documents"]}

    assert rc("seeds") == 0, said("seeds")
    seeds = {d["source"] for d in json.loads(said("list_full", "out"))["documents"]} if rc("list_full") == 0 else set()
    assert int((out / "free_kb").read_text()) <= free_kb + 100
    # the write that does not fit: refused in one line, nothing changed
    assert rc("full") == 1
    lines = said("full").strip().splitlines()
    assert len(" ".join(lines)) < 400 and "Traceback" not in said("full"), said("full")
    assert "not enough free disk space" in " ".join(lines) and "nothing was changed" in " ".join(lines)
    assert rc("list_full") == 0 and len(seeds) == 5 and not any("article" in s for s in seeds)
    assert rc("search_full") == 0 and json.loads(said("search_full", "out"))["results"]
    assert rc("doctor_full") == 0, said("doctor_full", "out") + said("doctor_full")
    # space freed: the same command then works, and the index is whole
    assert rc("again") == 0, said("again")
    assert json.loads(said("again", "out"))["added"] == 30
    assert rc("list_after") == 0 and len(sources("list_after")) == 35 and seeds <= sources("list_after")
    hits = json.loads(said("search_after", "out"))["results"]
    assert hits and "lighthouse keeper" in hits[0]["text"]
    assert rc("doctor_after") == 0, said("doctor_after", "out") + said("doctor_after")
    # the disk filled by another file during a write: the write stops in one line; what was
    # searchable still is, with the documents finished before; then it goes on from there
    assert rc("during") == 1
    errors = [line for line in said("during", "log").splitlines() if line.startswith("error")]
    assert len(errors) == 1 and "Traceback" not in said("during", "log"), said("during", "log")[-2000:]
    assert "free disk space" in errors[0] or "disk is full" in errors[0], errors[0]
    assert rc("list_during") == 0 and sources("list_after") <= sources("list_during")
    assert rc("search_during") == 0 and json.loads(said("search_during", "out"))["results"]
    assert rc("resumed") == 0, said("resumed")
    assert rc("list_resumed") == 0 and len(sources("list_resumed")) == 75
    assert rc("doctor_resumed") == 0, said("doctor_resumed", "out") + said("doctor_resumed")
