"""A small MLP on real data, run in 4-bit on the RTL array: scikit-learn's digits.

Data: ``sklearn.datasets.load_digits`` (1,797 8x8 images of handwritten digits, shipped
inside scikit-learn: no download), pixels 0..16 scaled to [0, 1], split 80/20 into
1,437 training and 360 test images (``train_test_split``, stratified, seed
:data:`SEED`). Model: 64-32-10, ReLU, trained in float by ``MLPClassifier`` (adam, seed
:data:`SEED`), weights kept as float32.

Quantized inference, per format ("int4" or "mxfp4", :mod:`sim.models.mx`): the images
are quantized in blocks of 32 along the pixels (K of layer 1), W1 along its rows; layer
1 runs as a block-scaled GEMM on the array (:mod:`sim.drivers.blocked`); the host adds
the float bias, applies ReLU and quantizes the hidden activations (blocks of 32 along
the hidden units, K of layer 2); layer 2 runs the same way; the host adds the bias and
takes the argmax. Every GEMM's RTL result is compared with its exact reference.

"w4a8" (8-bit activations, 4-bit weights, :data:`QUANTIZATION`): each weight matrix is
int4 with one float scale per output unit (per channel, symmetric, ``max|W[:, j]| / 7``),
each layer's input is int8 with one float scale per tensor (symmetric, static:
``peak / 127`` with the peak of that input over the *training* images in float32,
:func:`activation_peaks`; test values beyond it clamp to -128..127), both rounded to
nearest even. Each layer is one whole-K integer GEMM ``q_x @ q_w`` on a fusable array
(``ArrayConfig.fusion``, ``precision="w4a8"``, :mod:`sim.drivers.fusion`), checked
against numpy's int64 product; the host scales it by ``s_x * s_w[j]`` and goes on as
above.
"""
import warnings
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from sim.drivers.blocked import run_blocked
from sim.models.mx import FORMATS, quantize

__all__ = ["SEED", "HIDDEN", "NETWORKS", "QUANTIZATION", "Mlp", "load_split", "train",
           "float_predict", "quantize_symmetric", "activation_peaks", "quantized_forward",
           "run_digits", "DigitsReport", "digits_arrays"]

#: The quantized networks: the block formats of :mod:`sim.models.mx`, and W4A8.
NETWORKS = (*FORMATS, "w4a8")
#: How each network is quantized (printed by ``systolic digits``, in its report).
QUANTIZATION = {
    "int4": "int4 elements, a power-of-two scale per block of 32 along K (A and B)",
    "mxfp4": "E2M1 elements, an E8M0 scale per block of 32 along K (A and B)",
    "w4a8": "weights int4 per output channel (scale: max abs / 7), activations int8 per "
            "tensor (static scale: training-set peak / 127), symmetric, round to nearest "
            "even",
}

SEED = 0
HIDDEN = 32
TEST_FRACTION = 0.2


@dataclass(frozen=True)
class Mlp:
    W1: np.ndarray        # float32 [64, HIDDEN]
    b1: np.ndarray        # float32 [HIDDEN]
    W2: np.ndarray        # float32 [HIDDEN, 10]
    b2: np.ndarray        # float32 [10]


@lru_cache(maxsize=1)
def load_split():
    """``(X_train, X_test, y_train, y_test)``: float32 pixels in [0, 1], int labels."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    digits = load_digits()
    X = (digits.data / 16.0).astype(np.float32)
    return tuple(train_test_split(X, digits.target, test_size=TEST_FRACTION,
                                  random_state=SEED, stratify=digits.target))


MAX_ITER = 300


@lru_cache(maxsize=1)
def train():
    """The float MLP, trained on the training split with a fixed seed; remembered in
    ``build/cache/digits`` under the training setup and the scikit-learn and numpy
    versions (float32 weights through JSON: exact), so that every process does not
    train it again."""
    from hdl.cache import Cache, package_versions
    cache = Cache()
    key = Cache.key(seed=SEED, hidden=HIDDEN, max_iter=MAX_ITER, test=TEST_FRACTION,
                    versions=package_versions("scikit-learn", "numpy"))
    stored = cache.load_json("digits", key)
    if stored is None or set(stored) != set(Mlp.__dataclass_fields__):
        stored = cache.store_json("digits", key, {
            name: value.tolist() for name, value in zip(("W1", "b1", "W2", "b2"),
                                                        _fit())})
    return Mlp(**{name: np.asarray(stored[name], dtype=np.float32) for name in stored})


def _fit():
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    X_train, _, y_train, _ = load_split()
    clf = MLPClassifier(hidden_layer_sizes=(HIDDEN,), activation="relu", solver="adam",
                        max_iter=MAX_ITER, random_state=SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X_train, y_train)
    (W1, W2), (b1, b2) = clf.coefs_, clf.intercepts_
    return [np.asarray(v, dtype=np.float32) for v in (W1, b1, W2, b2)]


def float_predict(mlp, X):
    """float32 inference: predicted labels."""
    h = np.maximum(X.astype(np.float32) @ mlp.W1 + mlp.b1, np.float32(0))
    return np.argmax(h @ mlp.W2 + mlp.b2, axis=1)


@dataclass
class LayerGemm:
    name: str
    shape: tuple          # (M, K, N)
    blocks: int           # K-blocks of 32 = array jobs (W4A8: 1, the whole K)
    matches: bool         # RTL C equals the exact reference
    cycles: int = 0       # RTL cycles summed over the blocks (0: no RTL)
    model_cycles: int = 0  # the cycle model's, summed alike


def quantize_symmetric(x, bits, peak):
    """``(q int64, scale float64)``: ``x / scale`` rounded to nearest even and clamped to
    signed ``bits``-bit integers, ``scale = peak / (2**(bits-1) - 1)`` (``peak``: a
    scalar, or one per column; a zero peak gets scale 1)."""
    qmax = 2 ** (bits - 1) - 1
    peak = np.asarray(peak, dtype=np.float64)
    scale = np.where(peak > 0, peak / qmax, 1.0)
    q = np.clip(np.rint(np.asarray(x, dtype=np.float64) / scale), -qmax - 1, qmax)
    return q.astype(np.int64), scale


def activation_peaks(mlp):
    """W4A8's static activation calibration: ``(max |image pixel|, max hidden ReLU
    output)`` over the training images, in float32 (the test images are not used)."""
    X_train = load_split()[0]
    h = np.maximum(X_train @ mlp.W1 + mlp.b1, np.float32(0))
    return float(np.abs(X_train).max()), float(h.max())


def _results(results):
    done = [r for r in results if r is not None]
    return sum(r.cycles for r in done), sum(r.model_cycles for r in done)


def _layer(x, W, fmt, name, runner, peak):
    """``(x @ W in float64 from the quantized GEMM, LayerGemm)`` of one layer."""
    shape = (x.shape[0], x.shape[1], W.shape[1])
    if fmt == "w4a8":
        qx, sx = quantize_symmetric(x, 8, peak)
        qw, sw = quantize_symmetric(W, 4, np.abs(W).max(axis=0))
        (C, result), = runner([(qx, qw)])
        C = np.asarray(C, dtype=np.int64)
        return (C.astype(np.float64) * (sx * sw)[None, :],
                LayerGemm(name, shape, 1, bool(np.array_equal(C, qx @ qw)),
                          *_results([result])))
    qx = quantize(x, fmt, axis=1, name=f"{name} input")
    qw = quantize(W, fmt, axis=0, name=f"{name} weights")
    gemm, = run_blocked([(qx, qw)], runner=runner)
    return gemm.C.to_float(), LayerGemm(name, shape, len(gemm.partials), gemm.matches,
                                        *_results(gemm.results))


def quantized_forward(mlp, X, fmt, *, runner):
    """``(logits float64 [n, 10], [LayerGemm, LayerGemm])`` of the ``fmt`` network
    (:data:`NETWORKS`) with both GEMMs run by ``runner``
    (:func:`sim.drivers.blocked.rtl_runner` or :func:`sim.drivers.blocked.model_runner`;
    for "w4a8" on an array fused for W4A8, ``precision="w4a8"``)."""
    x = X
    layers = []
    peaks = activation_peaks(mlp) if fmt == "w4a8" else (None, None)
    for name, W, b, peak in (("layer 1", mlp.W1, mlp.b1, peaks[0]),
                             ("layer 2", mlp.W2, mlp.b2, peaks[1])):
        y, layer = _layer(x, W, fmt, name, runner, peak)
        layers.append(layer)
        y = y + b.astype(np.float64)
        x = np.maximum(y, 0.0).astype(np.float32) if name == "layer 1" else y
    return x, layers


@dataclass
class DigitsReport:
    n_train: int
    n_test: int
    accuracy: dict                                   # format -> test accuracy
    layers: dict = field(default_factory=dict)       # format -> [LayerGemm, ...]
    logits: dict = field(default_factory=dict)       # format -> float64 [n_test, 10]

    @property
    def all_match(self):
        """Every GEMM's C equals its exact reference, and its cycles the model's."""
        return all(g.matches and g.cycles == g.model_cycles
                   for gs in self.layers.values() for g in gs)

    def as_dict(self):
        return {"n_train": self.n_train, "n_test": self.n_test,
                "accuracy": {k: round(v, 6) for k, v in self.accuracy.items()},
                "all_rtl_gemms_match": self.all_match,
                "quantization": {fmt: QUANTIZATION[fmt] for fmt in self.layers},
                "gemms": {fmt: [{"layer": g.name, "shape": list(g.shape),
                                 "k_blocks": g.blocks, "matches": g.matches,
                                 "cycles": g.cycles, "model_cycles": g.model_cycles}
                                for g in gs]
                          for fmt, gs in self.layers.items()}}


def run_digits(*, runners, limit=None, progress=None):
    """Train (cached), then test the float32 network and one quantized network per
    ``runners[fmt]`` on the first ``limit`` test images (all when None).
    ``progress(fmt)`` is called before each format."""
    for fmt in runners:
        if fmt not in NETWORKS:
            raise ValueError(f"unknown format {fmt!r}; allowed: {', '.join(NETWORKS)}")
    X_train, X_test, _, y_test = load_split()
    if limit is not None:
        X_test, y_test = X_test[:limit], y_test[:limit]
    mlp = train()
    report = DigitsReport(len(X_train), len(X_test),
                          {"float32": float(np.mean(float_predict(mlp, X_test) == y_test))})
    for fmt, runner in runners.items():
        if progress is not None:
            progress(fmt)
        logits, layers = quantized_forward(mlp, X_test, fmt, runner=runner)
        report.accuracy[fmt] = float(np.mean(np.argmax(logits, axis=1) == y_test))
        report.layers[fmt] = layers
        report.logits[fmt] = logits
    return report


def digits_arrays(rows, cols, dataflow):
    """The RTL array per network: int4 elements on the signed int4 MAC, MXFP4 elements on
    the FP4 MAC (both W = 16: a block's partial sum needs at most 13 bits), W4A8 on the
    int4 MAC fused for W4A8 (W = 16: the driver cuts K into passes of at most 31 int8 x
    int4 products, :func:`hdl.fusion.precision_max_safe_k`)."""
    from hdl.mac import MacConfig
    from hdl.array import ArrayConfig
    return {fmt: ArrayConfig(rows, cols, dataflow, MacConfig(numerics=numerics),
                             fold_overlap=True, fusion=fusion)
            for fmt, numerics, fusion in (("int4", "int4", "none"), ("mxfp4", "fp4", "none"),
                                          ("w4a8", "int4", "w4a8"))}
