"""File parsers: each turns one format into a ``rag.ingest.document.Document`` whose
blocks carry the structure (headings, terms, code, tables, pages)."""
