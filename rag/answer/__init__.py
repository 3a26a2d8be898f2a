"""Answering a question: analysis, follow-ups, retrieval, the ranker and selection, drafting with the LLM, the pipeline."""
