"""Energy of MACs and arrays on real operand streams (:func:`hdl.flows.energy.design_energy`).

Operand data sets (:data:`DATASETS`), each an ``A [M, K]``, ``B [K, N]`` pair of operand
codes for the MAC's numerics:

* ``uniform``: every operand value equally likely (:func:`sim.drivers.gemm.random_operands`);
* ``normal``: standard normal values quantized in blocks of 32 along K to int4 (int4/uint4
  MACs: :func:`sim.models.mx.quantize_int4`; uint4 takes the magnitudes) or to MXFP4
  E2M1 codes (fp4 MACs: :func:`sim.models.mx.quantize_mx`);
* ``digits``: the digits MLP's layer 1 (:mod:`sim.studies.digits`): test images times
  W1, quantized the same way (int4 or MXFP4 as the numerics);
* ``sparse50``/``sparse90``: ``uniform`` with 50% / 90% of the operands (A and B alike)
  set to zero.

A MAC alone is fed the operand pairs of the GEMM's inner loop (``for m, n: for k:
a = A[m, k], b = B[k, n]``), one per cycle after two reset cycles; an array plays the
GEMM's own cycle schedule (:func:`sim.drivers.gemm.build_schedule`) after two reset
cycles, exactly as the cocotb bench does. Energy per MAC: the MAC's energy per cycle
(one MAC per cycle); an array's per *useful* MAC: total over ``M K N``.
"""
import numpy as np

from hdl.array import ArrayConfig
from hdl.flows.capture import lanes_to_bits
from hdl.flows.energy import design_energy
from hdl.mac import MacConfig

__all__ = ["DATASETS", "operands", "mac_stimulus", "mac_energy", "array_stimulus",
           "array_energy", "split_stimulus", "split_energy", "RESET_CYCLES"]

DATASETS = ("uniform", "normal", "digits", "sparse50", "sparse90")
RESET_CYCLES = 2


def _quantized(x, w, mac):
    """float ``x [M, K]`` and ``w [K, N]`` as operand codes of ``mac``."""
    from sim.models.mx import quantize
    fmt = "mxfp4" if mac.numerics == "fp4" else "int4"
    qa = quantize(x, fmt, axis=1, name="A").q.astype(np.int64)
    qb = quantize(w, fmt, axis=0, name="B").q.astype(np.int64)
    if mac.numerics == "uint4":
        qa, qb = np.minimum(np.abs(qa), 15), np.minimum(np.abs(qb), 15)
    return qa, qb


def operands(dataset, M, K, N, mac: MacConfig, *, seed=0):
    """``(A, B)`` int64 operand codes of ``mac`` for ``dataset`` (see the module
    docstring). ValueError for an unknown data set."""
    rng = np.random.default_rng(seed)
    if dataset in ("uniform", "sparse50", "sparse90"):
        from sim.drivers.gemm import random_operands
        A, B = random_operands(rng, M, K, N, mac)
        if dataset != "uniform":
            p = {"sparse50": 0.5, "sparse90": 0.9}[dataset]
            zero = 0                      # fp4 code 0 is +0 too
            A = np.where(rng.random(A.shape) < p, zero, A)
            B = np.where(rng.random(B.shape) < p, zero, B)
        return A, B
    if dataset == "normal":
        return _quantized(rng.standard_normal((M, K)).astype(np.float32),
                          rng.standard_normal((K, N)).astype(np.float32), mac)
    if dataset == "digits":
        from sim.studies.digits import load_split, train
        mlp = train()
        X = load_split()[1]
        reps_m, reps_k = -(-M // X.shape[0]), -(-K // X.shape[1])
        x = np.tile(X, (reps_m, reps_k))[:M, :K]
        w = np.tile(mlp.W1, (-(-K // mlp.W1.shape[0]), -(-N // mlp.W1.shape[1])))[:K, :N]
        return _quantized(x, w, mac)
    raise ValueError(f"unknown data set {dataset!r}; allowed: {', '.join(DATASETS)}")


def mac_stimulus(A, B, cycles):
    """``(ports, cycles, warmup)`` feeding a MAC the GEMM's inner-loop operand pairs
    (repeated if there are fewer than ``cycles``) after :data:`RESET_CYCLES`."""
    M, K = A.shape
    N = B.shape[1]
    a = np.broadcast_to(A[:, None, :], (M, N, K)).reshape(-1)
    b = np.broadcast_to(B.T[None, :, :], (M, N, K)).reshape(-1)
    reps = -(-cycles // len(a))
    a, b = np.tile(a, reps)[:cycles], np.tile(b, reps)[:cycles]
    T = cycles + RESET_CYCLES
    rst = np.zeros(T, np.int64)
    rst[:RESET_CYCLES] = 1
    pad = np.zeros(RESET_CYCLES, np.int64)
    return ({"a": np.concatenate([pad, a]) & 15, "b": np.concatenate([pad, b]) & 15,
             "rst": rst}, T, RESET_CYCLES)


def mac_energy(mac: MacConfig, *, dataset="uniform", cycles=2000, glitch=True, timing=None,
               seed=0, cache=True, progress=None):
    """``(EnergyReport, pJ per MAC)`` of ``mac`` alone on ``cycles`` operand pairs of
    ``dataset`` (a 16 x 64 x 16 GEMM's inner loop, repeated as needed)."""
    A, B = operands(dataset, 16, 64, 16, mac, seed=seed)
    ports, T, warmup = mac_stimulus(A, B, cycles)
    rep = design_energy(mac.verilog(), "mac", ports, cycles=T, warmup=warmup,
                        glitch=glitch, timing=timing, cache=cache, progress=progress)
    return rep, rep.total_pj / rep.cycles


def array_stimulus(config: ArrayConfig, A, B, precision="int4"):
    """``(ports, cycles, warmup)`` of one GEMM on the array: its schedule after
    :data:`RESET_CYCLES` reset cycles (inputs 0); the warm-up is the reset and the
    compact OS array's power-up flush. ``precision`` W4A8/int8 on a fusable array: the
    digit steps of :mod:`sim.drivers.fusion` (A, and B for int8, are int8 operands)."""
    from sim.drivers.gemm import build_schedule, check_operands
    A, B = check_operands(A, B, config.mac, precision)
    sched = build_schedule(A, B, config, precision)
    T = sched.length + RESET_CYCLES
    ports = {}
    for name, (lanes, bits) in sched.ports.items():
        b = lanes_to_bits(lanes[:sched.length], bits)
        ports[name] = np.concatenate([np.zeros((RESET_CYCLES, b.shape[1]), np.uint8), b])
    rst = np.zeros((T, 1), np.uint8)
    rst[:RESET_CYCLES] = 1
    ports["rst"] = rst
    return ports, T, RESET_CYCLES + sched.pre


def array_energy(config: ArrayConfig, A, B, *, glitch=True, timing=None, cache=True,
                 progress=None, precision="int4"):
    """``(EnergyReport, pJ per useful MAC)`` of the GEMM ``A @ B`` on ``config`` (a
    useful MAC of ``precision``: one int8 x int4 or int8 x int8 product counts once)."""
    from hdl.array import TOPLEVEL
    ports, T, warmup = array_stimulus(config, A, B, precision)
    rep = design_energy(config.verilog(), TOPLEVEL, ports, cycles=T, warmup=warmup,
                        glitch=glitch, timing=timing, cache=cache, progress=progress)
    macs = A.shape[0] * A.shape[1] * B.shape[1]
    return rep, rep.total_pj / macs


def split_stimulus(config, mode, jobs):
    """``(ports, cycles, warmup, macs)`` of one phase of a split array: ``jobs[s]`` (an
    ``(A, B)`` pair, a list of them, or None) on sub-array ``s`` of ``mode`` (a mode
    name of :meth:`hdl.split.SplitConfig.modes`), as :func:`sim.drivers.split.run_split`
    plays it, after :data:`RESET_CYCLES`."""
    from sim.drivers.split import _build_program, program_lanes
    from sim.models.program import SplitJob

    def job(x):
        if x is None:
            return None
        if isinstance(x, list):
            return [job(y) for y in x]
        return SplitJob(x[0], x[1], 0)
    program = [(config.mode(mode), [job(j) for j in jobs])]
    built = _build_program(program, config)
    lanes = program_lanes(built)
    T = built.length + RESET_CYCLES
    ports = {}
    for name, (arr, bits) in lanes.items():
        b = lanes_to_bits(arr, bits)
        ports[name] = np.concatenate([np.zeros((RESET_CYCLES, b.shape[1]), np.uint8), b])
    rst = np.zeros((T, 1), np.uint8)
    rst[:RESET_CYCLES] = 1
    ports["rst"] = rst
    flat = [p for j in jobs if j is not None for p in (j if isinstance(j, list) else [j])]
    macs = sum(A.shape[0] * A.shape[1] * B.shape[1] for A, B in flat)
    return ports, T, RESET_CYCLES + built.pre, macs


def split_energy(config, mode, jobs, *, glitch=True, timing=None, cache=True,
                 progress=None):
    """``(EnergyReport, pJ per useful MAC)`` of one phase on a split array (see
    :func:`split_stimulus`)."""
    from hdl.split import SPLIT_TOPLEVEL
    ports, T, warmup, macs = split_stimulus(config, mode, jobs)
    rep = design_energy(config.verilog(), SPLIT_TOPLEVEL, ports, cycles=T, warmup=warmup,
                        glitch=glitch, timing=timing, cache=cache, progress=progress)
    return rep, rep.total_pj / macs
