"""Matching a dataset's source names to the ids in the index it is asked against.

A dataset names each supporting source by its path relative to the corpus folder
(``000_1f1a702e80f12a89.txt``), while ``rag ingest seeds`` files it under the
folder's name (``seeds/000_1f1a702e80f12a89.txt``). Scored as they are, every
citation would count as the wrong source. ``align_sources`` finds the one folder
prefix under which the dataset's sources are indexed and rewrites them with it,
or stops with one error when they are not in the index at all."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from rag.errors import NotFoundError
from rag.evaluation.dataset import EvalItem


@dataclass(frozen=True)
class Alignment:
    """The items to score (sources rewritten when ``prefix`` is set) and one line
    to show (``note``; empty when the names matched as they are)."""

    items: list[EvalItem]
    prefix: str = ""
    note: str = ""


def _prefixes(indexed: Collection[str], wanted: set[str]) -> dict[str, set[str]]:
    """Folder prefixes (ending in '/') under which indexed ids hold wanted sources."""
    found: dict[str, set[str]] = defaultdict(set)
    for ident in indexed:
        for cut, char in enumerate(ident):
            if char == "/" and ident[cut + 1:] in wanted:
                found[ident[:cut + 1]].add(ident[cut + 1:])
    return found


def align_sources(items: Sequence[EvalItem], indexed: Collection[str], dataset: str = "the dataset") -> Alignment:
    """``items`` with their supporting sources named as ``indexed`` names them."""
    wanted = {source for item in items for source in item.supporting}
    indexed = set(indexed)
    as_named = wanted & indexed
    if not wanted or not indexed or as_named == wanted:
        return Alignment(list(items))
    candidates = _prefixes(indexed, wanted)
    if candidates:
        prefix, matched = max(candidates.items(), key=lambda kv: (len(kv[1]), -len(kv[0])))
        if len(matched) > len(as_named):
            rewritten = [dataclasses.replace(item, supporting=tuple(
                prefix + s if prefix + s in indexed else s for s in item.supporting)) for item in items]
            missing = f"; {len(wanted) - len(matched)} are not in the index" if len(matched) < len(wanted) else ""
            return Alignment(rewritten, prefix, (
                f"{dataset} names its sources relative to the corpus folder: scoring them as the index's ids "
                f"under {prefix!r} ({len(matched)} of {len(wanted)} sources{missing})"))
    if not as_named:
        raise NotFoundError(
            f"none of the {len(wanted)} sources {dataset} cites is in the index: it names, e.g., "
            f"{min(wanted)!r}, the index holds, e.g., {min(indexed)!r}; ingest the corpus it was written for "
            "(with --prefix '' to name sources by their paths in the folder)")
    return Alignment(list(items), "", f"{len(wanted) - len(as_named)} of the {len(wanted)} sources {dataset} cites "
                                      f"are not in the index (e.g. {min(wanted - as_named)!r})")
