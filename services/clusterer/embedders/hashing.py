"""Feature-hashed n-gram vectors: the numpy-only fallback when no model can be loaded.

Lexical only, so weak on paraphrases, but strong on machine text (logs, error messages), instant
to start and fast enough for tests and CI. Hashes are derived from CRC32 and a fixed 64-bit mixer,
never from Python's per-process salted hash(), so vectors are identical across processes and hosts.
"""

import re
import zlib
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"\w+")
_WHITESPACE = re.compile(r"\s+")
# Hex-like runs that contain a digit (numbers, block ids, addresses, hashes), with a leading minus:
# ids make otherwise identical log lines look different. On the loghub sets replacing them raised
# ARI (BGL best 0.977 -> 0.998) and left Banking77 unchanged (docs/embedders.md).
_NUMBER_OR_HEX_ID = re.compile(r"0x[0-9a-f]+|-?[0-9a-f]*\d[0-9a-f]*")
_NUMBER_PLACEHOLDER = "0"
CHAR_NGRAM_SIZES = (3, 4, 5)
_POLY_BASE = 0x100000001B3  # FNV-1a 64-bit prime, used as the base of the rolling hash
# Distinct salts keep a word, a word pair and a character n-gram with equal codes apart.
_UNIGRAM_SALT = 0x9E3779B97F4A7C15
_BIGRAM_SALT = 0xC2B2AE3D27D4EB4F
_CHAR_SALT = 0x165667B19E3779F9


def _mix64(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's finaliser: spreads every input bit over the bucket and the sign bit."""
    values = values ^ (values >> 33)
    values *= 0xFF51AFD7ED558CCD
    values ^= values >> 33
    values *= 0xC4CEB9FE1A85EC53
    values ^= values >> 33
    return values


def _word_features(words: list[str]) -> list[np.ndarray]:
    codes = np.array([zlib.crc32(word.encode()) for word in words], dtype=np.uint64)
    bigrams = codes[:-1] * _POLY_BASE + codes[1:]
    return [codes ^ _UNIGRAM_SALT, bigrams ^ _BIGRAM_SALT]


def _char_ngram_features(text: str) -> list[np.ndarray]:
    """Rolling polynomial hashes of code points: vectorised, so no Python loop per n-gram."""
    codes = np.frombuffer(f" {text} ".encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    features = []
    rolling = codes
    for size in range(1, max(CHAR_NGRAM_SIZES) + 1):
        if size > 1:
            rolling = rolling[:-1] * _POLY_BASE + codes[size - 1 :]
        if size in CHAR_NGRAM_SIZES:
            features.append(rolling ^ (_CHAR_SALT + size))
    return features


class HashingEmbedder:
    """Signed feature hashing of word uni/bigrams and character 3-5-grams, sublinear tf, L2."""

    def __init__(self, dimensions: int = 1024, normalise_ids: bool = True) -> None:
        """normalise_ids replaces numbers and hex ids by one placeholder; the name records it
        because vectors made with and without it must not be mixed in one index."""
        self.dimensions = dimensions
        self.normalise_ids = normalise_ids
        self.name = f"hashing-{dimensions}" + ("" if normalise_ids else "-raw-ids")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Rows of texts without any feature (e.g. empty strings) stay all-zero."""
        result = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for row, text in enumerate(texts):
            result[row] = self._embed_one(text)
        return result

    def _embed_one(self, text: str) -> np.ndarray:
        text = _WHITESPACE.sub(" ", text.lower()).strip()
        if self.normalise_ids:
            text = _NUMBER_OR_HEX_ID.sub(_NUMBER_PLACEHOLDER, text)
        if not text:
            return np.zeros(self.dimensions, dtype=np.float32)
        features = _mix64(np.concatenate(_word_features(_WORD.findall(text)) + _char_ngram_features(text)))
        distinct, counts = np.unique(features, return_counts=True)
        buckets = (distinct % self.dimensions).astype(np.intp)
        signs = np.where((distinct >> 63) == 1, -1.0, 1.0)
        weights = signs * (1.0 + np.log(counts))
        vector = np.bincount(buckets, weights=weights, minlength=self.dimensions).astype(np.float32)
        vector /= max(float(np.linalg.norm(vector)), 1e-12)
        return vector
