"""gemini-embedding-001 through the Gemini API: the production embedder.

768 dimensions (a Matryoshka cut of the 3072-d model) keep Upstash storage and queries small; only
the full 3072-d output comes normalised, so rows are L2-normalised here. The API takes at most 100
texts per batchEmbedContents call.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from google.genai import types

from services.clusterer.gemini_api import GEMINI, gemini_client
from shared.retry_policy import RetryPolicy

MODEL = "gemini-embedding-001"
DIMENSIONS = 768
MAX_TEXTS_PER_CALL = 100
TASK_TYPE = "CLUSTERING"


class GeminiResponseError(RuntimeError):
    """The API answered, but not with one vector of the requested size per text."""


class GeminiEmbedder:
    def __init__(
        self,
        api_key: str,
        base_url: str = "",
        *,
        retry: RetryPolicy | None = None,
        timeout_seconds: float = 60.0,
        dimensions: int = DIMENSIONS,
        batch_size: int = MAX_TEXTS_PER_CALL,
    ) -> None:
        self.dimensions = dimensions
        self.name = f"{MODEL}-{dimensions}"
        self._batch_size = min(batch_size, MAX_TEXTS_PER_CALL)
        self._retry = retry or RetryPolicy()
        self._client = gemini_client(api_key, base_url, timeout_seconds)
        self._config = types.EmbedContentConfig(task_type=TASK_TYPE, output_dimensionality=dimensions)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Blank texts are not sent (the API rejects empty content) and keep a zero row."""
        result = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        rows = [row for row, text in enumerate(texts) if text.strip()]
        for start in range(0, len(rows), self._batch_size):
            chunk = rows[start : start + self._batch_size]
            result[chunk] = self._embed_call([texts[row] for row in chunk])
        norms = np.linalg.norm(result, axis=1, keepdims=True)
        normalised: np.ndarray = result / np.maximum(norms, 1e-12)
        return normalised

    def _embed_call(self, texts: list[str]) -> np.ndarray:
        response = self._retry.call_blocking(
            GEMINI,
            lambda: self._client.models.embed_content(model=MODEL, contents=texts, config=self._config),
        )
        vectors = [embedding.values or [] for embedding in response.embeddings or []]
        if len(vectors) != len(texts) or any(len(vector) != self.dimensions for vector in vectors):
            raise GeminiResponseError(
                f"{MODEL}: asked for {len(texts)} vectors of {self.dimensions} dims, got "
                f"{[len(vector) for vector in vectors]}"
            )
        return np.asarray(vectors, dtype=np.float32)
