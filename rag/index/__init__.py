"""Where units are kept and found again: embedders and their ONNX exports, the Chroma store, the lexical index."""
