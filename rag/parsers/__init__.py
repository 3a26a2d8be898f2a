"""File parsers: each turns one format into a ``rag.document.Document`` whose
blocks carry the structure (headings, terms, code, tables, pages)."""
