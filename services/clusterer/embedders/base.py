"""The contract every clusterer embedder meets, so the clustering code never depends on one model."""

from collections.abc import Sequence
from typing import Protocol

import numpy as np


class Embedder(Protocol):
    """Turns texts into unit vectors whose dot product is their cosine similarity.

    `embed` is synchronous because it is CPU-bound; async callers run it in a worker thread.
    It returns float32 of shape (len(texts), dimensions), every row L2-normalised; a text with
    no usable content (for example the empty string) yields a zero row rather than an error.
    """

    name: str
    dimensions: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...
