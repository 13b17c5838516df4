"""The editable visual memory: embeddings with metadata, kNN voting and edits."""

__all__: list[str] = []
