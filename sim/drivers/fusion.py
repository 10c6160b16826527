"""GEMMs in W4A8 and int8 on a fusable array: the digit expansion of K (see hdl.fusion).

An M x K x N GEMM of precision p becomes an M x K' x N GEMM of 4-bit digits, K' = D*K
(D = :data:`hdl.fusion.DIGIT_STEPS`: 1, 2, 4), pass by pass: K is cut into passes of at
most ``k`` MACs (``k`` = :func:`hdl.fusion.precision_max_safe_k`, and on WS at most
``R // D`` so that one pass's D*k digit rows fit one weight tile), and each pass is laid
out phase-major (:data:`hdl.fusion.PHASES`): for int8 the k hi*hi digit steps, then the
k hi*lo, the k lo*hi and the k lo*lo steps, the first step of a new digit weight tagged
``x16``. The tags are per K' index; the driver sends them with A (ports ``a_ua``,
``a_ub``, ``a_x16``). After the pass, each output holds the exact sum of its k int8
products (mod 2**W, and the pass length keeps it inside W bits); the driver adds the
passes in int64 as for int4.
"""
from dataclasses import dataclass

import numpy as np

from hdl.fusion import (DIGIT_STEPS, PHASES, PRECISIONS, TAGS, precision_max_safe_k)
from sim.models.cycles import balanced_passes

__all__ = ["DigitSteps", "digit_steps", "check_precision", "digits_of"]


@dataclass
class DigitSteps:
    A: np.ndarray          # int64 [M, K'] digit values (-8..15)
    B: np.ndarray          # int64 [K', N]
    tags: dict             # tag name -> uint8 [K'] (the array's tags only)
    passes: tuple          # digit steps per K pass, in order (sum = K')
    k_rows: int            # WS: digit rows per full weight tile (D * MACs per pass)


def check_precision(precision, config):
    """ValueError (one line, naming the fix) unless ``config`` runs ``precision``."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; allowed: {', '.join(PRECISIONS)}")
    if precision not in config.precisions:
        need = "int8" if precision == "int8" else "w4a8 or int8"
        raise ValueError(f"precision {precision}: the array was built with fusion "
                         f"{config.fusion} (runs {', '.join(config.precisions)}); "
                         f"build it with fusion {need} (--fusion)")
    D = DIGIT_STEPS[precision]
    if config.dataflow == "ws" and config.rows < D:
        raise ValueError(f"precision {precision}: a WS pass needs {D} rows for the "
                         f"{D} digit steps of one MAC; the array has {config.rows}")


def digits_of(x, which):
    """The digit ``which`` ("hi": x >> 4, signed; "lo": x & 15; "x": x) of int8s."""
    x = np.asarray(x, np.int64)
    return {"hi": x >> 4, "lo": x & 15, "x": x}[which]


def pass_lengths(K, precision, config):
    """MACs per K pass: WS chunks of ``min(R // D, k_safe)`` (the last the rest), OS
    :func:`sim.models.cycles.balanced_passes` of ``k_safe``."""
    k_safe = precision_max_safe_k(precision, config.mac.acc_width)
    if precision == "int4":
        k_safe = config.mac.max_safe_k
    if config.dataflow == "ws":
        kk = min(config.rows // DIGIT_STEPS[precision], k_safe, K)
        return tuple(min(kk, K - k0) for k0 in range(0, K, kk)), kk
    return balanced_passes(K, min(k_safe, K)), None


def digit_steps(A, B, precision, config):
    """The digit expansion of the checked ``A @ B`` in ``precision`` on ``config``."""
    K = A.shape[1]
    D = DIGIT_STEPS[precision]
    lengths, kk = pass_lengths(K, precision, config)
    phases = PHASES[precision]
    cols_a, rows_b = [], []
    tags = {t: [] for t in TAGS[config.fusion]}
    k0 = 0
    for kp in lengths:
        for a_digit, b_digit, ua, ub, x16 in phases:
            cols_a.append(digits_of(A[:, k0:k0 + kp], a_digit))
            rows_b.append(digits_of(B[k0:k0 + kp, :], b_digit))
            for t, v in (("ua", ua), ("ub", ub)):
                if t in tags:
                    tags[t].append(np.full(kp, v, np.uint8))
            if "x16" in tags:
                x = np.zeros(kp, np.uint8)
                x[0] = x16
                tags["x16"].append(x)
        k0 += kp
    return DigitSteps(np.concatenate(cols_a, axis=1), np.concatenate(rows_b, axis=0),
                      {t: np.concatenate(v) for t, v in tags.items()},
                      tuple(D * kp for kp in lengths), D * kk if kk else 0)
