"""Reading an embedded Chroma index through Chroma's own engine, without the
``chromadb`` Python package's start-up cost.

``import chromadb`` and opening a ``PersistentClient`` take about 1.5 s on a
2-core machine (the client layer imports telemetry, auth and schema modules and
checks every ``@override`` at import). The engine underneath is the compiled
``chromadb_rust_bindings`` module that ``chromadb`` itself calls for an embedded
index (``chromadb/api/rust.py``): it imports in about 25 ms and opens the same
files the same way. The question path (``rag ask``, ``rag search``, the server's
searches) reads through it; every write still goes through ``chromadb``'s client
(``rag.index.store``), which validates what it stores.

The calls below are the ones ``chromadb.api.rust.RustBindingsAPI`` makes (checked
against chromadb 1.5; ``tests/index/test_chroma_direct.py`` compares every read with the
``chromadb`` client's on the same index). If the installed bindings do not accept
them, ``open_reader`` raises ``DirectUnavailable`` and ``rag.index.store`` reads through
``chromadb`` instead."""

from __future__ import annotations

import json
import logging
import resource
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TENANT = "default_tenant"
DATABASE = "default_database"
SQLITE_FILE = "chroma.sqlite3"


class DirectUnavailable(Exception):
    """The compiled engine cannot be used here (missing, or of another API)."""


class DirectCollection:
    """The read half of a ``chromadb`` ``Collection``: ``get``, ``query`` and
    ``count`` with the same arguments and result keys."""

    def __init__(self, bindings: Any, collection_id: str) -> None:
        self._b = bindings
        self.id = collection_id

    def count(self) -> int:
        return int(self._b.count(self.id, TENANT, DATABASE))

    def get(self, ids: list[str] | None = None, where: dict[str, Any] | None = None,
            limit: int | None = None, offset: int | None = None,
            include: list[str] | None = None) -> dict[str, Any]:
        include = list(include if include is not None else ["documents", "metadatas"])
        res = self._b.get(self.id, ids, json.dumps(where) if where else None, limit, offset or 0, None,
                          include, TENANT, DATABASE)
        return {"ids": list(res.ids), "documents": res.documents, "metadatas": res.metadatas,
                "embeddings": res.embeddings}

    def query(self, query_embeddings: list[list[float]], n_results: int = 10,
              where: dict[str, Any] | None = None, include: list[str] | None = None) -> dict[str, Any]:
        include = list(include if include is not None else ["documents", "metadatas", "distances"])
        res = self._b.query(self.id, None, query_embeddings, n_results, json.dumps(where) if where else None,
                            None, include, TENANT, DATABASE)
        return {"ids": res.ids, "documents": res.documents, "metadatas": res.metadatas,
                "distances": res.distances, "embeddings": res.embeddings}


class EmptyCollection:
    """A collection that does not exist yet (an index nobody has written to)."""

    id = ""

    def count(self) -> int:
        return 0

    def get(self, ids: list[str] | None = None, where: dict[str, Any] | None = None,
            limit: int | None = None, offset: int | None = None,
            include: list[str] | None = None) -> dict[str, Any]:
        return {"ids": [], "documents": [], "metadatas": [], "embeddings": []}

    def query(self, query_embeddings: list[list[float]], n_results: int = 10,
              where: dict[str, Any] | None = None, include: list[str] | None = None) -> dict[str, Any]:
        empty: list[list[Any]] = [[] for _ in query_embeddings]
        return {"ids": empty, "documents": empty, "metadatas": empty, "distances": empty, "embeddings": empty}


class DirectReader:
    """One open handle on an embedded index (``persist_dir``: the folder that
    ``chromadb.PersistentClient(path=...)`` was given). Like any Chroma client of an
    embedded index, it keeps the vector index in memory as it was when opened:
    open a new one to see what was written since."""

    def __init__(self, bindings: Any) -> None:
        self._b = bindings

    def collection(self, name: str) -> DirectCollection | EmptyCollection:
        """The collection ``name``; an empty one if it does not exist yet."""
        for found in self._b.list_collections(None, 0, TENANT, DATABASE):
            if found.name == name:
                return DirectCollection(self._b, str(found.id))
        return EmptyCollection()

    def max_batch_size(self) -> int:
        return int(self._b.get_max_batch_size())


def open_reader(persist_dir: Path) -> DirectReader | None:
    """A reader of the index in ``persist_dir``; None when there is no index there
    yet (nothing is created). ``DirectUnavailable`` when the engine cannot be used."""
    if not (persist_dir / SQLITE_FILE).is_file():
        return None
    try:
        import chromadb_rust_bindings as rb

        config = rb.SqliteDBConfig(hash_type=rb.MigrationHash.MD5, migration_mode=rb.MigrationMode.Apply,
                                   url=str(persist_dir / SQLITE_FILE))
        # chromadb sizes the cache of open vector indexes by the file-handle limit, 5 files each
        cache = resource.getrlimit(resource.RLIMIT_NOFILE)[0] // 5
        bindings = rb.Bindings(allow_reset=False, sqlite_db_config=config, persist_path=str(persist_dir),
                               hnsw_cache_size=cache)
    except (ImportError, AttributeError, TypeError) as exc:
        raise DirectUnavailable(f"chromadb_rust_bindings cannot be used: {exc}") from exc
    return DirectReader(bindings)
