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
"""
import warnings
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from sim.drivers.blocked import run_blocked
from sim.models.mx import FORMATS, quantize

__all__ = ["SEED", "HIDDEN", "Mlp", "load_split", "train", "float_predict",
           "quantized_forward", "run_digits", "DigitsReport"]

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
    blocks: int           # K-blocks of 32 = array jobs
    matches: bool         # RTL C equals the exact reference
    cycles: int = 0       # RTL cycles summed over the blocks (0: no RTL)


def quantized_forward(mlp, X, fmt, *, runner):
    """``(logits float64 [n, 10], [LayerGemm, LayerGemm])`` of the ``fmt`` network with
    both GEMMs run by ``runner`` (:func:`sim.drivers.blocked.rtl_runner` or
    :func:`sim.drivers.blocked.model_runner`)."""
    x = X
    layers = []
    for name, W, b in (("layer 1", mlp.W1, mlp.b1), ("layer 2", mlp.W2, mlp.b2)):
        qx = quantize(x, fmt, axis=1, name=f"{name} input")
        qw = quantize(W, fmt, axis=0, name=f"{name} weights")
        gemm, = run_blocked([(qx, qw)], runner=runner)
        layers.append(LayerGemm(name, (x.shape[0], x.shape[1], W.shape[1]),
                                len(gemm.partials), gemm.matches,
                                sum(r.cycles for r in gemm.results if r is not None)))
        y = gemm.C.to_float() + b.astype(np.float64)
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
        return all(g.matches for gs in self.layers.values() for g in gs)

    def as_dict(self):
        return {"n_train": self.n_train, "n_test": self.n_test,
                "accuracy": {k: round(v, 6) for k, v in self.accuracy.items()},
                "all_rtl_gemms_match": self.all_match,
                "gemms": {fmt: [{"layer": g.name, "shape": list(g.shape),
                                 "k_blocks": g.blocks, "matches": g.matches,
                                 "cycles": g.cycles} for g in gs]
                          for fmt, gs in self.layers.items()}}


def run_digits(*, runners, limit=None, progress=None):
    """Train (cached), then test the float32 network and one quantized network per
    ``runners[fmt]`` on the first ``limit`` test images (all when None).
    ``progress(fmt)`` is called before each format."""
    for fmt in runners:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")
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
