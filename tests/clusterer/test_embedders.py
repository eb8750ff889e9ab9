"""Tests for the offline embedders: the contract, the MiniLM numerics and the weight pin."""

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from services.clusterer.embedders.base import Embedder
from services.clusterer.embedders.hashing import HashingEmbedder
from services.clusterer.embedders.minilm import (
    BATCH_SIZE,
    MiniLMEmbedder,
    ModelIntegrityError,
    erf,
    package_model_dir,
)
from tests.support.paths import FIXTURES
from tests.support.paths import REPO_ROOT as REPO

REFERENCE = FIXTURES / "minilm_reference_banking77_200.npz"
SENTENCE = "the card payment was declined twice at the shop so I tried again later today"
WORDS = SENTENCE.split()
# Lengths deliberately out of order and more than one internal batch.
VARIED_TEXTS = [" ".join(WORDS[: 1 + (index * 7) % len(WORDS)]) for index in range(BATCH_SIZE + 9)]


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder()


@pytest.fixture(params=[pytest.param("minilm", marks=pytest.mark.slow), "hashing"])
def embedder(request: pytest.FixtureRequest, minilm: MiniLMEmbedder) -> Embedder:
    return minilm if request.param == "minilm" else HashingEmbedder()


def cosine(embedder: Embedder, first: str, second: str) -> float:
    vectors = embedder.embed([first, second])
    return float(vectors[0] @ vectors[1])


def test_embed_returns_unit_float32_rows(embedder: Embedder) -> None:
    vectors = embedder.embed(["my card has not arrived", "what is the exchange rate?"])
    assert vectors.shape == (2, embedder.dimensions)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_embed_of_no_texts_is_an_empty_matrix(embedder: Embedder) -> None:
    assert embedder.embed([]).shape == (0, embedder.dimensions)


def test_embed_is_deterministic(embedder: Embedder) -> None:
    np.testing.assert_array_equal(embedder.embed(VARIED_TEXTS), embedder.embed(VARIED_TEXTS))


def test_empty_text_gives_a_zero_or_unit_row(embedder: Embedder) -> None:
    vectors = embedder.embed(["", "a real sentence"])
    assert np.isfinite(vectors).all()
    assert np.linalg.norm(vectors[0]) == pytest.approx(1.0, abs=1e-5) or not vectors[0].any()


def test_batching_preserves_input_order(embedder: Embedder) -> None:
    together = embedder.embed(VARIED_TEXTS)
    one_by_one = np.vstack([embedder.embed([text]) for text in VARIED_TEXTS])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


@pytest.mark.slow
def test_minilm_reproduces_sentence_transformers(minilm: MiniLMEmbedder) -> None:
    reference = np.load(REFERENCE)
    for texts_key, embeddings_key in (("texts", "embeddings"), ("edge_texts", "edge_embeddings")):
        ours = minilm.embed([str(text) for text in reference[texts_key]])
        agreement = np.sum(ours * reference[embeddings_key], axis=1)
        assert agreement.min() >= 0.999, f"{texts_key}: worst row cosine {agreement.min()}"


def test_minilm_ranks_paraphrase_above_other_intent(minilm: MiniLMEmbedder) -> None:
    query = "my card has not arrived"
    paraphrase = cosine(minilm, query, "when will my new card be delivered")
    assert paraphrase > cosine(minilm, query, "what is the exchange rate") + 0.2


def test_erf_matches_math_erf() -> None:
    points = np.linspace(-6.0, 6.0, 4001, dtype=np.float32)
    expected = np.array([math.erf(float(point)) for point in points])
    result = erf(points)
    assert result.dtype == np.float32
    assert np.abs(result - expected).max() < 5e-7


def flip_middle_byte(path: Path) -> None:
    with path.open("r+b") as handle:
        handle.seek(path.stat().st_size // 2)
        original = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([original[0] ^ 0xFF]))


@pytest.mark.parametrize("tampered_file", ["model.safetensors", "tokenizer.json"])
def test_tampered_model_files_are_refused(tmp_path: Path, tampered_file: str) -> None:
    for name in ("model.safetensors", "tokenizer.json"):
        shutil.copyfile(package_model_dir() / name, tmp_path / name)
    flip_middle_byte(tmp_path / tampered_file)
    with pytest.raises(ModelIntegrityError, match=f"{tampered_file} has SHA-256"):
        MiniLMEmbedder(model_dir=tmp_path)


def test_untampered_copy_loads(tmp_path: Path) -> None:
    """Guards the test above: the refusal must come from the flipped byte, not from the copy."""
    for name in ("model.safetensors", "tokenizer.json"):
        shutil.copyfile(package_model_dir() / name, tmp_path / name)
    assert MiniLMEmbedder(model_dir=tmp_path).embed(["ok"]).shape == (1, 384)


def test_hashing_ranks_near_duplicate_above_unrelated_text() -> None:
    hashing = HashingEmbedder()
    query = "payment failed with error code 502 on checkout"
    near_duplicate = cosine(hashing, query, "Payment failed with error code 503 at checkout")
    assert near_duplicate > cosine(hashing, query, "how do I change my profile picture") + 0.3


def test_hashing_id_normalisation_merges_lines_that_differ_only_in_ids() -> None:
    first = "Receiving block blk_-1608999687919862906 src: /10.250.19.102:54106"
    second = "Receiving block blk_7503483334202473044 src: /10.251.215.16:55695"
    assert cosine(HashingEmbedder(), first, second) == pytest.approx(1.0)
    assert cosine(HashingEmbedder(normalise_ids=False), first, second) < 0.9


def test_hashing_vectors_do_not_depend_on_the_process_hash_seed() -> None:
    """Stored vectors must stay comparable after a restart, so Python's salted hash() is banned."""
    code = (
        "from services.clusterer.embedders.hashing import HashingEmbedder;"
        "print(HashingEmbedder().embed(['stable across restarts']).tobytes().hex())"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=REPO,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1
