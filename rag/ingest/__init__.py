"""Reading documents: loaders and parsers by format, the document model, chunking into evidence units, source ids."""
