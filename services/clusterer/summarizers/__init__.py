"""Cluster titles and summaries: extractive by default, an LLM in production."""
