"""Run integer GEMMs on the RTL systolic array (cocotb on Verilator or Icarus).

:func:`run_gemm` (one GEMM) and :func:`run_gemms` (many GEMMs in ONE simulator run)
tile any ``A[M,K] @ B[K,N]`` onto an R x C array (:mod:`hdl.array`), build the design
once per (design, simulator) under ``build_root/array_<slug>_<simulator>`` and reuse that
build for every later call.

The driver (this module) turns each GEMM into a cycle-by-cycle schedule of the array's
input ports (skewed streams, weight loads, swap/last/valid flags; timing in
:mod:`sim.models.cycles`), writes it to ``.npz`` files whose paths go to the simulator in
the environment variable :data:`JOBS_ENV`; the cocotb bench (:mod:`sim.tb.array`) plays
the schedule, records every cycle in which some ``c_valid`` bit is set, and writes that
trace back. The driver then checks that results came out in exactly the cycles the
schedule predicts (no more, no fewer), reads them, and adds the partial results of the
K passes/folds exactly in int64. ``cycles`` in the result is measured from the RTL trace
(cycle of the last ``c_valid`` + 1, counting from the first operand's cycle).
"""
import functools
import json
import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hdl.array import ArrayConfig, TOPLEVEL, os_chains
from hdl.emit import write_if_changed
from hdl.pe import init_cycles, os_flag
from hdl.fusion import DIGIT_STEPS, precision_max_safe_k
from sim.drivers.fusion import digit_steps, check_precision
from sim.drivers.operands import check_operands, exact_result, random_operands
from sim.models.cycles import (model_cycles, scalesim_cycles, utilization,
                             os_period, ws_period, balanced_passes)
from sim.runner import REPO_ROOT, run_cocotb, SimulationError, VERILATOR_FAST_MODEL

__all__ = ["GemmResult", "run_gemm", "random_operands", "run_gemms", "check_operands",
           "build_schedule", "gemm_model_cycles", "JOBS_ENV", "DEFAULT_BUILD_ROOT", "exact_result"]

JOBS_ENV = "SYSTOLIC_ARRAY_JOBS"
DEFAULT_BUILD_ROOT = REPO_ROOT / "build" / "sim"
TAIL_CYCLES = 2          # idle cycles simulated after the last expected result


@dataclass
class GemmResult:
    C: np.ndarray                 # int64 [M, N]
    cycles: int                   # measured in RTL: first operand in -> last result out
    model_cycles: int             # sim.models.cycles.model_cycles for this GEMM
    scalesim_cycles: int          # SCALE-Sim's analytical formula (no K split, P = 0)
    macs: int                     # M*K*N
    utilization: float            # macs / (R*C*cycles)
    sim_seconds: float            # wall time of the simulator playing this GEMM
    k_passes: int                 # partial results per output added by the driver
    folds: int = 0                # array loads (WS weight tiles / OS output tiles)
    simulated_cycles: int = 0     # cycles the bench played (incl. idle tail)
    sim_cpu_seconds: float = 0.0  # CPU time of the simulator process playing this GEMM
    build_seconds: float = 0.0    # time this call spent (re)building the design (0: cached)
    path: str = "cocotb"          # simulation path that ran it (sim.paths): cocotb, native
    model: str = "gate"           # the design simulated: gate-level, or the proven twin
    proof: object = None          # the twin's proof (sim.native.twin), None for gate
    build: object = None          # native path: the player build (sim.native.build)
    note: str = ("partial sums of the K passes (each at most max_safe_k products, so the "
                 "W-bit hardware sum cannot overflow) are added exactly in int64 by the "
                 "driver")


# ---------------------------------------------------------------------------------------
# Schedules

@dataclass
class Schedule:
    """Per-cycle input lanes of one GEMM and where every result comes out."""
    ports: dict                   # port name -> (uint8 [T, lanes], bits per lane)
    length: int                   # cycles to play
    # Expected outputs: parallel arrays; the result visible after edge ``t`` in output
    # lane ``lane`` is added to C[row, col] (row/col -1: a PE outside the GEMM, -2: a
    # drain zero of the compact OS array, -3: its power-up flush; all must still be
    # valid, -2 must be 0).
    t: np.ndarray
    lane: np.ndarray
    row: np.ndarray
    col: np.ndarray
    last_cycle: int               # cycle of the last result (= model's cycles)
    folds: int
    k_passes: int
    pre: int = 0                  # init cycles played before cycle 0 (not counted)
    settle: np.ndarray = None     # per lane: outputs read before this are power-up noise


def _ws_schedule(A, B, cfg, digits=None):
    R, C, P = cfg.rows, cfg.cols, cfg.latency
    n = cfg.mac.width
    mask = (1 << n) - 1
    M, K = A.shape
    N = B.shape[1]
    kr = min(R, cfg.mac.max_safe_k, K) if digits is None else digits.k_rows
    tags = {} if digits is None else digits.tags
    passes = math.ceil(K / kr)
    folds = [(k0, n0) for k0 in range(0, K, kr) for n0 in range(0, N, C)]
    period = ws_period(M, R, C, P, fold_overlap=cfg.fold_overlap,
                       double_buffer=cfg.double_buffer)
    bases = [R + f * period for f in range(len(folds))]
    last = bases[-1] + M + R + C + P - 2
    T = last + TAIL_CYCLES
    a = np.zeros((T, R), np.uint8)
    tag_lanes = {t: np.zeros((T, R), np.uint8) for t in tags}
    sw = np.zeros((T, R), np.uint8)
    v = np.zeros((T, R), np.uint8)
    w = np.zeros((T, C), np.uint8)
    wen = np.zeros((T, C), np.uint8)
    ts, lanes, rows_, cols_ = [], [], [], []
    m_idx = np.arange(M)
    r_idx, c_idx = np.arange(R), np.arange(C)
    # Weight load of a fold: column c takes row R-1-s of the tile after edge
    # base + c - R + s (s = 0..R-1), shifted down the column while w_en is high.
    w_t = c_idx[None, :] + r_idx[:, None] - R                  # [s, c], + base
    # Operands of row k, token m: in cycle base + k + m (skewed by one per row).
    a_t = r_idx[None, :] + m_idx[:, None]                      # [m, k], + base
    # Result of token m, column c: visible in cycle base+m+R+c+P, i.e. read after edge
    # base+m+R+c+P-1 in output lane c (column-major, like the drain).
    o_t = (c_idx[:, None] + m_idx[None, :] + R + P - 1).ravel()
    o_lane = np.repeat(c_idx, M)
    o_row = np.tile(m_idx, C)
    for (k0, n0), base in zip(folds, bases):
        kk = min(kr, K - k0)
        nn = min(C, N - n0)
        tile = np.zeros((R, C), np.int64)
        tile[:kk, :nn] = B[k0:k0 + kk, n0:n0 + nn]
        wen[base + w_t, c_idx] = 1
        w[base + w_t, c_idx] = tile[::-1, :] & mask
        a[base + a_t[:, :kk], r_idx[:kk]] = A[:, k0:k0 + kk] & mask
        for t, vec in tags.items():         # digit tags (hdl.fusion): per K index
            tag_lanes[t][base + a_t[:, :kk], r_idx[:kk]] = vec[k0:k0 + kk]
        v[base + a_t, r_idx] = 1
        sw[base + r_idx, r_idx] = 1
        ts.append(base + o_t)
        lanes.append(o_lane)
        rows_.append(o_row)
        cols_.append(np.repeat(np.where(c_idx < nn, n0 + c_idx, -1), M))
    ports = {"a_in": (a, n), "a_valid": (v, 1), "w_in": (w, n), "w_en": (wen, 1)}
    if cfg.double_buffer:
        ports["a_swap"] = (sw, 1)
    ports.update({f"a_{t}": (lanes, 1) for t, lanes in tag_lanes.items()})
    return Schedule(ports, T, np.concatenate(ts), np.concatenate(lanes),
                    np.concatenate(rows_), np.concatenate(cols_), last, len(folds), passes)


@functools.lru_cache(maxsize=16)
def _os_exit_entries(R, C, window):
    """The results of one OS tile in the order they leave the array: int64 arrays
    ``(lane d, position s, PE row i, PE column j)``, lane by lane. ``window``: None (each
    lane shows its chain of PEs), or the drain window of the compact PE (m entries per
    lane, those past the chain i = j = -2)."""
    d_, s_, i_, j_ = [], [], [], []
    for d, chain in enumerate(os_chains(R, C)):
        for s in range(len(chain) if window is None else window):
            i, j = chain[s] if s < len(chain) else (-2, -2)
            d_.append(d)
            s_.append(s)
            i_.append(i)
            j_.append(j)
    out = tuple(np.array(x, np.int64) for x in (d_, s_, i_, j_))
    for x in out:
        x.flags.writeable = False
    return out


def _os_schedule(A, B, cfg, digits=None):
    R, C, P = cfg.rows, cfg.cols, cfg.latency
    n = cfg.mac.width
    mask = (1 << n) - 1
    M, K = A.shape
    N = B.shape[1]
    m = min(R, C)
    if digits is None:
        passes, tags = balanced_passes(K, min(cfg.mac.max_safe_k, K)), {}
    else:
        passes, tags = digits.passes, digits.tags
    starts = np.cumsum((0,) + passes[:-1]).tolist()
    tiles = [(k0, kp, m0, n0) for k0, kp in zip(starts, passes) for m0 in range(0, M, R)
             for n0 in range(0, N, C)]
    kps = [kp for _, kp, _, _ in tiles]
    bases = [0]
    for kp, kn in zip(kps, kps[1:]):         # sim.models.cycles.os_period
        if cfg.fold_overlap:                 # stream ends advance by max(K', m)
            bases.append(bases[-1] + kp + os_period(kn, R, C, True) - kn)
        else:                                # stream starts advance by K + m
            bases.append(bases[-1] + os_period(kp, R, C, False))
    drain = 1 if cfg.fold_overlap else m     # flag cycles per row and tile
    # The compact PE has no reset: a drain window on zeros flushes it first (hdl.pe).
    pre = 0 if cfg.fold_overlap else init_cycles(R, C)
    bases = [pre + x for x in bases]
    last = bases[-1] + kps[-1] + P + R + C - 2
    T = last + m + TAIL_CYCLES
    a = np.zeros((T, R), np.uint8)
    tag_lanes = {t: np.zeros((T, R), np.uint8) for t in tags}
    flag = np.zeros((T, R), np.uint8)
    b = np.zeros((T, C), np.uint8)
    ts, lanes, rows_, cols_ = [], [], [], []
    if pre:                             # init drain: valid, values unspecified
        d0, s0 = np.divmod(np.arange((R + C - 1) * m), m)
        ts.append(d0 + P + s0)
        lanes.append(d0)
        rows_.append(np.full(len(d0), -3))
        cols_.append(np.full(len(d0), -3))
        for i in range(R):
            flag[i:i + m, i] = 1
    # C[i][j], the s-th result on anti-diagonal lane d, is visible in cycle
    # base + d + kp + P + s, i.e. read after edge base + d + kp + P + s - 1; the compact PE
    # then shows the zeros shifted in at the edge until its drain window of m cycles
    # ends (those entries: i = j = -2).
    exit_d, exit_s, exit_i, exit_j = _os_exit_entries(R, C, None if cfg.fold_overlap else m)
    exit_t = exit_d + exit_s + P - 1
    r_idx, c_idx = np.arange(R), np.arange(C)
    for (k0, kp, m0, n0), base in zip(tiles, bases):
        mm, nn = min(R, M - m0), min(C, N - n0)
        k_idx = np.arange(kp)
        # Row i streams A[m0+i, k0..] from cycle base + i; column j B[k0.., n0+j] from
        # base + j; row i's flag is high for ``drain`` cycles after its last operand.
        a[base + r_idx[:mm, None] + k_idx, r_idx[:mm, None]] = A[m0:m0 + mm, k0:k0 + kp] & mask
        for t, vec in tags.items():         # digit tags (hdl.fusion): per K index
            tag_lanes[t][base + r_idx[:mm, None] + k_idx, r_idx[:mm, None]] = \
                vec[k0:k0 + kp][None, :]
        f_t = base + r_idx[:, None] + kp - 1 + np.arange(drain)
        flag[f_t, r_idx[:, None]] = 1
        b[base + c_idx[:nn, None] + k_idx, c_idx[:nn, None]] = \
            B[k0:k0 + kp, n0:n0 + nn].T & mask
        ts.append(base + kp + exit_t)
        lanes.append(exit_d)
        real = (exit_i >= 0) & (exit_i < mm) & (exit_j >= 0) & (exit_j < nn)
        rows_.append(np.where(real, m0 + exit_i, np.minimum(exit_i, -1)))
        cols_.append(np.where(real, n0 + exit_j, np.minimum(exit_j, -1)))
    ports = {"a_in": (a, n), f"a_{os_flag(cfg.double_buffer)}": (flag, 1),
             "b_in": (b, n)}
    ports.update({f"a_{t}": (lanes, 1) for t, lanes in tag_lanes.items()})
    # Before its flush window a lane may show whatever the flag registers woke up with.
    settle = np.arange(R + C - 1) + P if pre else None
    return Schedule(ports, T, np.concatenate(ts), np.concatenate(lanes),
                    np.concatenate(rows_), np.concatenate(cols_), last - pre, len(tiles),
                    len(passes), pre, settle)


def gemm_model_cycles(M, K, N, config: ArrayConfig, precision="int4"):
    """Model cycles (:func:`sim.models.cycles.model_cycles`) of an M x K x N GEMM on the
    array ``config``: its size, dataflow, MAC pipeline, fold overlap, K chunk and
    double buffering; ``precision`` (:data:`hdl.fusion.PRECISIONS`): digit steps per
    MAC and the K chunk of its products."""
    if precision == "int4":
        k_chunk, steps = config.mac.max_safe_k, 1
    else:
        k_chunk = precision_max_safe_k(precision, config.mac.acc_width)
        steps = DIGIT_STEPS[precision]
    return model_cycles(M, K, N, config.rows, config.cols, config.dataflow,
                        pipeline=config.mac.pipeline, fold_overlap=config.fold_overlap,
                        k_chunk=k_chunk, double_buffer=config.double_buffer,
                        digits=steps)


def build_schedule(A, B, config: ArrayConfig, precision="int4") -> Schedule:
    """The cycle-by-cycle input schedule of one (checked) GEMM; ``precision`` other
    than int4, or a fusable array: the digit steps of :mod:`sim.drivers.fusion`. With
    clock gates every row is clocked (one GEMM keeps every row busy)."""
    schedule = _ws_schedule if config.dataflow == "ws" else _os_schedule
    if precision == "int4" and config.fusion == "none":
        sched = schedule(A, B, config)
    else:
        steps = digit_steps(A, B, precision, config)
        sched = schedule(steps.A, steps.B, config, steps)
    if config.clock_gate:
        sched.ports["clk_en"] = (np.ones((sched.length, config.rows), np.uint8), 1)
    return sched


def _pack(lanes, bits):
    """[T, L] lanes of ``bits`` (4 or 1) -> [T, bytes] little-endian packed words."""
    if bits == 1:
        return np.packbits(lanes.astype(np.uint8), axis=1, bitorder="little")
    if lanes.shape[1] % 2:
        lanes = np.concatenate([lanes, np.zeros((lanes.shape[0], 1), np.uint8)], axis=1)
    return (lanes[:, 0::2] | (lanes[:, 1::2] << 4)).astype(np.uint8)


# ---------------------------------------------------------------------------------------
# Running

def _build_dir(config, simulator, build_root):
    return Path(build_root) / f"{config.slug}_{simulator}"


def _write_design(config, build_dir):
    build_dir.mkdir(parents=True, exist_ok=True)
    return write_if_changed(build_dir / f"{TOPLEVEL}.v", config.verilog())


def acc_values(raw, mac):
    """W-bit accumulator words (uint64) as the int64 values they stand for."""
    W = mac.acc_width
    # uint64 -> int64 reinterprets bit 63 as the sign: exactly right for signed W = 64;
    # an unsigned pass sum below 2**63 (K < 4e16) is unchanged.
    vals = np.asarray(raw).astype(np.uint64).astype(np.int64)
    if mac.signed and W < 64:
        vals = np.where(vals >= (1 << (W - 1)), vals - (1 << W), vals)
    return vals


def dense_events(cycles, valid, values):
    """Result events ``(t, lane, raw value)`` (int64, int64, uint64 arrays, ordered by
    cycle then lane) of a dense trace: ``cycles`` [n] after which some lane was valid,
    ``valid`` [n, lanes] and ``values`` [n, lanes]."""
    rows, lane = np.nonzero(np.asarray(valid).astype(bool))
    return (np.asarray(cycles, np.int64)[rows], lane.astype(np.int64),
            np.asarray(values)[rows, lane].astype(np.uint64))


def event_keys(t, lane):
    """One int64 key per (cycle, lane), ordered like the pairs."""
    return np.asarray(t, np.int64) * (1 << 20) + np.asarray(lane, np.int64)


def key_pairs(keys):
    """(cycle, lane) pairs of some keys (for messages)."""
    return [(int(k) >> 20, int(k) & ((1 << 20) - 1)) for k in keys]


def event_index(events):
    """The result ``events`` (:func:`dense_events`) sorted by (cycle, lane) key, for
    :func:`read_values`: ``(keys, raw values)``."""
    keys = event_keys(events[0], events[1])
    order = np.argsort(keys, kind="stable")
    return keys[order], np.asarray(events[2])[order]


def read_values(index, t, lane, mac):
    """The int64 values the result events (``index``: :func:`event_index`) hold for the
    schedule entries read after edges ``t`` on ``lane`` (each must be an event)."""
    keys, raw = index
    want = event_keys(t, lane)
    if not len(want):
        return np.zeros(0, np.int64)
    pos = np.minimum(np.searchsorted(keys, want), max(len(keys) - 1, 0))
    if not len(keys) or np.any(keys[pos] != want):
        raise SimulationError("a result expected in the trace is missing")
    return acc_values(raw[pos], mac)


def collect(row, col, t, vals, shape, *, pre=0, where="", lanes=None):
    """C (int64, ``shape``) summed from the schedule entries' values (row/col < 0: no
    element of C); SimulationError if a drain zero (row -2) is not 0. ``where`` names
    the place in the error (``{lane}`` is filled from ``lanes``)."""
    zeros = row == -2               # compact OS: the drain window's zeros
    if np.any(vals[zeros] != 0):
        n = int(np.argmax(vals[zeros] != 0))
        place = where.format(lane=int(lanes[zeros][n])) if lanes is not None else where
        raise SimulationError(f"{place}: a drained accumulator was not cleared: it shows "
                              f"{int(vals[zeros][n])} in cycle "
                              f"{int(t[zeros][n]) + 1 - pre}")
    out = np.zeros(shape, np.int64)
    keep = (row >= 0) & (col >= 0)
    np.add.at(out, (row[keep], col[keep]), vals[keep])
    return out


def _decode(sched, events, config, M, N):
    """Check the result ``events`` (:func:`dense_events`) against the schedule and return
    (C, last cycle)."""
    t_got, lane_got, raw = events
    if sched.settle is not None:
        awake = t_got >= sched.settle[lane_got]
        t_got, lane_got, raw = t_got[awake], lane_got[awake], raw[awake]
    got = np.unique(event_keys(t_got, lane_got))
    want = np.unique(event_keys(sched.t, sched.lane))
    if not np.array_equal(got, want):
        missing = np.setdiff1d(want, got)
        extra = np.setdiff1d(got, want)
        raise SimulationError(
            f"results came out at unexpected cycles: {len(missing)} missing "
            f"(first (cycle, lane): {key_pairs(missing[:5])}), {len(extra)} unexpected "
            f"(first: {key_pairs(extra[:5])})")
    vals = read_values(event_index((t_got, lane_got, raw)), sched.t, sched.lane, config.mac)
    out = collect(sched.row, sched.col, sched.t, vals, (M, N), pre=sched.pre,
                  where="lane {lane}", lanes=sched.lane)
    # the trace matched sched.t above; cycle 0 is the first after the init cycles
    last_seen = int(sched.t[sched.row >= -1].max()) + 1 - sched.pre
    return out, last_seen


def run_gemms(jobs, config: ArrayConfig, *, simulator, build_root=None, progress=None,
              waves=None, precision="int4"):
    """Run every ``(A, B)`` of ``jobs`` in one simulator run; returns a list of
    :class:`GemmResult`. ``progress(done, total)`` is called as results are decoded.
    ``precision``: int4 (default), or W4A8 / int8 on an array built with that fusion
    (``ArrayConfig.fusion``; :mod:`sim.drivers.fusion`): A (and B) int8."""
    build_root = Path(build_root) if build_root is not None else DEFAULT_BUILD_ROOT
    check_precision(precision, config)
    checked = [check_operands(A, B, config.mac, precision) for A, B in jobs]
    if not checked:
        return []
    build_dir = _build_dir(config, simulator, build_root)
    source = _write_design(config, build_dir)
    (build_dir / "jobs").mkdir(parents=True, exist_ok=True)
    job_dir = Path(tempfile.mkdtemp(dir=build_dir / "jobs", prefix="run-"))
    try:
        schedules, manifest = [], []
        for n, (A, B) in enumerate(checked):
            sched = build_schedule(A, B, config, precision)
            schedules.append(sched)
            inp = job_dir / f"job{n}_in.npz"
            arrays = {name: _pack(lanes, bits) for name, (lanes, bits) in sched.ports.items()}
            np.savez(inp, **arrays)
            manifest.append({"input": str(inp), "output": str(job_dir / f"job{n}_out.npz"),
                             "length": sched.length})
        spec = {"acc_width": config.mac.acc_width, "jobs": manifest,
                "out_lanes": config.out_lanes}
        spec_path = job_dir / "jobs.json"
        spec_path.write_text(json.dumps(spec))
        outcome = run_cocotb(sources=[source], toplevel=TOPLEVEL,
                             test_module="sim.tb.array", simulator=simulator,
                             build_dir=build_dir, extra_env={JOBS_ENV: str(spec_path)},
                             testcase="run_jobs", verilator_speed=VERILATOR_FAST_MODEL,
                             waves=waves)
        if not outcome.ok:
            raise SimulationError(f"{simulator}: array bench failed: {outcome.summary()}")
        results = []
        for n, ((A, B), sched, entry) in enumerate(zip(checked, schedules, manifest)):
            with np.load(entry["output"]) as trace:
                trace = {k: trace[k] for k in trace.files}
            M, K = A.shape
            N = B.shape[1]
            Cm, measured = _decode(sched, dense_events(trace["cycles"], trace["valid"],
                                                       trace["values"]), config, M, N)
            model = gemm_model_cycles(M, K, N, config, precision)
            results.append(GemmResult(
                C=Cm, cycles=measured, model_cycles=model,
                scalesim_cycles=scalesim_cycles(M, K, N, config.rows, config.cols,
                                                config.dataflow),
                macs=M * K * N,
                utilization=utilization(M, K, N, config.rows, config.cols, measured),
                sim_seconds=float(trace["seconds"]),
                sim_cpu_seconds=float(trace.get("cpu_seconds", trace["seconds"])),
                build_seconds=outcome.build_seconds, k_passes=sched.k_passes,
                folds=sched.folds, simulated_cycles=sched.length))
            if progress is not None:
                progress(n + 1, len(checked))
    finally:
        shutil.rmtree(job_dir, ignore_errors=True)
    return results


def run_gemm(A, B, config: ArrayConfig, *, simulator, build_root=None, progress=None,
             precision="int4"):
    """``A @ B`` on the RTL array; see :func:`run_gemms`."""
    return run_gemms([(A, B)], config, simulator=simulator, build_root=build_root,
                     progress=progress, precision=precision)[0]
