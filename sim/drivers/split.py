"""Play programs of independent GEMMs on the RTL of a splittable array, WS or OS
(:mod:`hdl.split`; programs and their timing: :mod:`sim.models.program`).

:func:`run_program` plays programs on the RTL (cocotb, :mod:`sim.tb.split`), checks
every result against ``A.astype(int64) @ B`` done by the caller, checks that every
sub-array's results came out in exactly the cycles the schedule predicts (no more, no
fewer, none on lanes a sub-array owns outside its jobs), and measures each job's cycles
(last result + 1 - start): RTL == model is asserted by the tests.

A program's input lanes are never held whole by the native path: :func:`_build_program`
places its jobs (start cycle, sub-array, lane maps) and :func:`program_chunks` yields
the lanes window by window, building each job's schedule only while a window overlaps
it; the cocotb bench takes them in one window (:func:`program_lanes`).

On an array built with ``SplitConfig.fusion`` every job has a precision
(``SplitJob.precision``: int4, w4a8, int8; :mod:`hdl.fusion`): its schedule is the digit
expansion of :mod:`sim.drivers.fusion` for its sub-array, whose tags enter with its A
stream (ports ``a_ua``/``a_ub``/``a_x16`` and their ``_x`` lanes), so sub-arrays run
different precisions at once, with no mode register.
"""
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hdl.clock_gate import tile_groups
from hdl.fusion import TAGS
from hdl.emit import write_if_changed
from hdl.split import SplitConfig, SubArray, SPLIT_TOPLEVEL
from sim.drivers.gemm import (ArrayConfig, build_schedule, check_operands, collect,
                              dense_events, event_index, event_keys, key_pairs, read_values,
                              _pack)
from sim.drivers.fusion import check_precision
from sim.drivers.split_lanes import lane_maps as _lane_maps, out_pairs as _out_pairs
from sim.models.gating import hold_cycles
from sim.models.program import SplitJob, drain_tail, normalize_program, program_schedule
from sim.runner import REPO_ROOT, run_cocotb, SimulationError

__all__ = ["JobResult", "ProgramResult", "run_program", "run_programs", "run_split",
           "program_chunks", "program_lanes", "CHUNK_CYCLES", "PROGRAMS_ENV", "clock_windows"]

PROGRAMS_ENV = "SYSTOLIC_SPLIT_PROGRAMS"
DEFAULT_BUILD_ROOT = REPO_ROOT / "build" / "sim"
TAIL_CYCLES = 2


@dataclass
class JobResult:
    C: np.ndarray             # int64 [M, N]
    cycles: int               # RTL: last result + 1 - start
    model_cycles: int
    start: int                # program cycle of the job's first operand
    end: int                  # model: start + model_cycles
    phase: int
    subarray: SubArray
    mode: str
    shape: tuple              # (M, K, N)
    precision: str = "int4"


@dataclass
class ProgramResult:
    jobs: list                # JobResult, in program order (phase, sub-array, job)
    cycles: int               # RTL: last result of the program + 1
    model_cycles: int
    sim_seconds: float
    sim_cpu_seconds: float = 0.0   # native path: CPU time of the player
    build_seconds: float = 0.0     # native path: time spent (re)building the player
    path: str = "cocotb"           # simulation path that ran it (sim.paths)
    model: str = "gate"            # the design simulated: gate-level, or the proven twin
    proof: object = None           # the twin's proof (sim.native.twin), None for gate


# ---------------------------------------------------------------------------------------
# RTL

# enter at the left edge (with the digit tags of a fused PE, hdl.fusion)
_A_PORTS = ("a_in", "a_swap", "a_valid", "a_drain", "a_last",
            *(f"a_{t}" for t in TAGS["int8"]))
_NIBBLE_PORTS = ("a_in", "w_in", "b_in")                          # 4-bit lanes


def _strip_flush(sched):
    """A compact OS schedule of :mod:`sim.drivers.gemm` without its power-up flush (the program
    plays one flush for the whole array, see :func:`_flush`): cycles from its cycle 0 on,
    row i's flag before its stream (cycle i: the flush window, rows i .. i + m - 1 of
    :mod:`hdl.pe`) cleared, the flush outputs (row -3) dropped. The ports are views of
    ``sched``'s, whose flag lanes are cleared in place (a schedule built for this)."""
    pre = sched.pre
    ports = {}
    for name, (data, bits) in sched.ports.items():
        data = data[pre:]
        if name == "a_drain":
            for i in range(data.shape[1]):
                data[:i, i] = 0
        ports[name] = (data, bits)
    keep = sched.row != -3
    return ports, sched.length - pre, sched.t[keep] - pre, sched.lane[keep], \
        sched.row[keep], sched.col[keep]


def _flush(config):
    """The compact OS array's power-up flush (no reset, :func:`hdl.pe.init_cycles`):
    sim.drivers.gemm's schedule of a zero 1x1x1 GEMM on the whole array (its flush window and one
    zero tile), played in split mode ``whole`` before the program's cycle 0 and waited
    out: from then on every register is zero and no valid bit is set, whatever the
    first phase's mode. ``(schedule, cycles before cycle 0)``; None for WS and the
    double-buffered OS PE (``rst`` clears them)."""
    if not config.compact_os:
        return None, 0
    z = np.zeros((1, 1), np.int64)
    sched = build_schedule(z, z, ArrayConfig(config.rows, config.cols, "os", config.mac))
    return sched, sched.length


def _job_schedule(job, sub, config):
    """One job's schedule on sub-array ``sub`` as the program plays it (its own flush
    stripped): ``(ports, length, t, lane, row, col, last_cycle)``."""
    sched = build_schedule(job.A, job.B, config.sub_config(sub), job.precision)
    if sched.pre:
        return (*_strip_flush(sched), sched.last_cycle)
    return (sched.ports, sched.length, sched.t, sched.lane, sched.row, sched.col,
            sched.last_cycle)


def _place(lanes, ports, length, a_map, w_map, start, T):
    """OR a sub-array schedule's input ``ports`` (``length`` cycles) into the port
    ``lanes`` of a window of ``T`` cycles, the schedule's cycle 0 at the window's cycle
    ``start`` (negative: it began in an earlier window); what falls outside is cut."""
    for pname, (data, _bits) in ports.items():
        entries = a_map if pname in _A_PORTS else w_map
        for suffix, lane_ids, delay in entries:
            if pname == "w_en":
                delay = 0           # w_en is not delayed (see hdl.split)
            t0 = start + delay
            lo, hi = max(0, -t0), min(length, T - t0)
            if lo < hi:
                lanes[pname + suffix][0][t0 + lo:t0 + hi, lane_ids] |= data[lo:hi]


@dataclass
class ExpectedJob:
    """Where and when one job's results must come out (one entry per result)."""
    pair: np.ndarray          # output pair index (:func:`_out_pairs`)
    lane: np.ndarray          # lane of that pair
    t: np.ndarray             # program cycle (flush included)
    row: np.ndarray           # C row of the result (-2: drain zero, -3: flush)
    col: np.ndarray
    start: int                # cycle of the job's first operand (flush included)
    end: int                  # model: start + model cycles
    shape: tuple              # (M, K, N)
    phase: int
    sub: SubArray
    mode: str
    precision: str = "int4"


@dataclass
class Placement:
    """Where one schedule's input lanes go: its cycle 0 at program cycle ``start``
    (flush included), through the lane maps ``a_map``/``w_map`` of :func:`_lane_maps`;
    its last lane ends before ``end``. ``job`` None: the power-up flush (:func:`_flush`)."""
    job: object               # SplitJob with checked operands, or None
    sub: SubArray
    start: int
    end: int
    a_map: list
    w_map: list


@dataclass
class BuiltProgram:
    """A program's placements and held cuts (its port streams, window by window:
    :func:`program_chunks`), with what the outputs must show."""
    phases: list              # normalized: [(SplitMode, [[SplitJob, ...] per sub-array])]
    config: SplitConfig
    ports: dict               # input port -> (lanes, bits per lane)
    placed: list              # Placement, flush first, then in program order
    cuts: list                # (port, uint8 [lanes], t_from, t_to): held cut bits
    expected: list            # ExpectedJob, in program order
    owned: list               # (output pair, [lanes], t_from, t_to) per phase and sub-array
    model_cycles: int
    length: int               # cycles played, flush included
    pre: int                  # flush cycles before cycle 0


def _placement(job, sub, config, start, length):
    a_map, w_map, _ = _lane_maps(config, sub)
    delay = max(d for _, _, d in a_map + w_map)
    return Placement(job, sub, start, start + delay + length, a_map, w_map)


def _checked_job(job, sub, config):
    """``job`` with checked operands of its precision, which sub-array ``sub`` of
    ``config`` must run (ValueError, one line, otherwise)."""
    check_precision(job.precision, config.sub_config(sub))
    return SplitJob(*check_operands(job.A, job.B, config.mac, job.precision), job.delay,
                    job.precision)


def _build_program(program, config):
    """Checked jobs, their placements, the held cuts, expectations and ownership: a
    :class:`BuiltProgram`. Each job's schedule is built here (for its expectations) and
    dropped; :func:`program_chunks` builds it again while its lanes are played."""
    norm = [(mode, [[_checked_job(j, sub, config) for j in js]
                    for sub, js in zip(config.subarrays(mode), lists)])
            for mode, lists in normalize_program(program, config)]
    rows, total, windows = program_schedule(norm, config)
    flush, pre = _flush(config)
    T = pre + total + TAIL_CYCLES + max(drain_tail(s, config) for s in
                                        config.subarrays(norm[-1][0]))
    n = config.mac.width
    ports = {}
    for name, (d, bits) in config.ports().items():
        if d == "in":
            per = n if name.removesuffix("_x") in _NIBBLE_PORTS else 1
            ports[name] = (bits // per, per)
    placed = []
    if flush is not None:           # in mode whole: every cut bit 0
        (sub,) = config.subarrays("whole")
        placed.append(_placement(None, sub, config, 0, flush.length))
    expect = []          # per job: out pair and lane per result, t, row, col, ...
    own = []             # (out pair, lanes, t_from, t_to)
    cuts = []
    row_iter = iter(rows)
    for p, (mode, lists) in enumerate(norm):
        subs = config.subarrays(mode)
        t_from, t_to = windows[p]
        t_from += pre
        t_to = T if t_to is None else t_to + pre   # own the lanes until the next phase
        for name, cut in (("row_cut", mode.row_cuts), ("col_cut", mode.col_cuts)):
            if name in ports:
                keep = np.zeros(ports[name][0], np.uint8)
                for x in cut:
                    keep[x - 1] = 1
                cuts.append((name, keep, t_from, t_to))     # held until the next phase
        phase_rows = [next(row_iter) for js in lists for _ in js]
        k = 0
        for sub, js in zip(subs, lists):
            _, _, o_map = _lane_maps(config, sub)
            o_pair = np.array([x[0] for x in o_map])
            o_lane = np.array([x[1] for x in o_map])
            for q in sorted(set(o_pair.tolist())):
                own.append((q, o_lane[o_pair == q].tolist(), t_from, t_to))
            for job in js:
                (_, _, _, start, end, shape) = phase_rows[k]
                k += 1
                start += pre
                length, t, lane, row, col, last = _job_schedule(job, sub, config)[1:]
                assert last == end + pre - start, (last, end, start)
                placed.append(_placement(job, sub, config, start, length))
                expect.append(ExpectedJob(pair=o_pair[lane], lane=o_lane[lane], t=t + start,
                                          row=row, col=col, start=start, end=end + pre,
                                          shape=shape, phase=p, sub=sub, mode=mode.name,
                                          precision=job.precision))
    return BuiltProgram(phases=norm, config=config, ports=ports, placed=placed, cuts=cuts,
                        expected=expect, owned=own, model_cycles=total, length=T, pre=pre)


#: Cycles per window of :func:`program_chunks` (the native path's default).
CHUNK_CYCLES = 1 << 14


def program_chunks(built, *, window=CHUNK_CYCLES):
    """The input lanes of a :class:`BuiltProgram` in consecutive windows of ``window``
    cycles (the last one shorter): per window, input port -> (uint8 [cycles, lanes],
    bits per lane). A job's schedule is built when the first window reaches it and
    dropped after its last; the schedules that end in a window are dropped before those
    that start in it are built, so memory holds the schedules running at one time (one
    per busy sub-array) and one window."""
    if not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be an int >= 1 cycles, got {window!r}")
    config, T = built.config, built.length
    order = sorted(built.placed, key=lambda pl: pl.start)
    active, nxt = [], 0         # [(Placement, ports, length)]

    def place(lanes, w0, w, item):
        """Place ``item`` in the window; True if it runs on past it."""
        pl, ports, length = item
        _place(lanes, ports, length, pl.a_map, pl.w_map, pl.start - w0, w)
        return pl.end > w0 + w

    def schedule(pl):
        if pl.job is None:
            sched = _flush(config)[0]
            return pl, sched.ports, sched.length
        return (pl, *_job_schedule(pl.job, pl.sub, config)[:2])
    for w0 in range(0, T, window):
        w = min(window, T - w0)
        lanes = {name: (np.zeros((w, count), np.uint8), per)
                 for name, (count, per) in built.ports.items()}
        active = [x for x in active if place(lanes, w0, w, x)]   # the finished ones go
        while nxt < len(order) and order[nxt].start < w0 + w:
            item = schedule(order[nxt])
            nxt += 1
            if place(lanes, w0, w, item):
                active.append(item)
            del item
        for name, bits, t_from, t_to in built.cuts:
            lo, hi = max(t_from, w0), min(t_to, w0 + w)
            if lo < hi:
                lanes[name][0][lo - w0:hi - w0] = bits
        if "clk_en" in lanes:
            for groups, t_from, t_to in clock_windows(built):
                lo, hi = max(t_from, w0), min(t_to, w0 + w)
                if lo < hi:
                    lanes["clk_en"][0][lo - w0:hi - w0, groups] = 1
        yield lanes


def clock_windows(built):
    """``[(tile groups, t_from, t_to)]``: the cycles in which tiles are clocked
    (:mod:`hdl.clock_gate`): the windows of :func:`sim.models.gating.clock_windows` for
    every job (shifted by the flush), and every tile during the compact OS PE's
    power-up flush. Everywhere else a tile is gated."""
    tr, tc, gr, gc = built.config.grid
    out = [(list(range(gr * gc)), pl.start, pl.end) for pl in built.placed if pl.job is None]
    out += [(tile_groups(e.sub.r0, e.sub.c0, e.sub.rows, e.sub.cols, tr, tc, gc),
             e.start,
             min(e.end + hold_cycles(e.sub, built.config), built.length))
            for e in built.expected]
    return out


def program_lanes(built):
    """All input lanes of a :class:`BuiltProgram` at once (the cocotb bench's form):
    :func:`program_chunks` in one window."""
    return next(program_chunks(built, window=built.length))


def _write_design(config, build_dir):
    build_dir.mkdir(parents=True, exist_ok=True)
    return write_if_changed(build_dir / f"{SPLIT_TOPLEVEL}.v", config.verilog())


def trace_events(trace, config):
    """Per output pair, the result events (:func:`sim.drivers.gemm.dense_events`) of a
    dense bench trace (``cycles_i``, ``valid_i``, ``values_i``)."""
    return [dense_events(trace[f"cycles_{i}"], trace[f"valid_{i}"], trace[f"values_{i}"])
            for i in range(len(_out_pairs(config)))]


def _decode(built, events, config):
    """The :class:`JobResult` of every job of ``built`` from the result ``events`` (one
    ``(t, lane, raw value)`` per output pair), after checking that every owned lane showed
    exactly the expected results; also the model's and the RTL's program cycles."""
    expect, own, pre = built.expected, built.owned, built.pre
    # Every owned (pair, lane, cycle window) must show exactly the expected results.
    want = {}
    for e in expect:
        for q in set(e.pair.tolist()):
            sel = e.pair == q
            want.setdefault(q, []).append((e.t[sel], e.lane[sel]))
    want = {q: (np.concatenate([t for t, _ in v]), np.concatenate([ln for _, ln in v]))
            for q, v in want.items()}
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64))

    def by_time(t, lane):
        order = np.argsort(t, kind="stable")
        return np.asarray(t)[order], np.asarray(lane)[order]
    got_t = {q: by_time(*events[q][:2]) for q in range(len(events))}
    want_t = {q: by_time(*want.get(q, empty)) for q in range(len(events))}

    def owned(tl, lane_ids, t_from, t_to):
        t, lane = tl
        lo, hi = np.searchsorted(t, [t_from, t_to])
        t, lane = t[lo:hi], lane[lo:hi]
        sel = np.isin(lane, lane_ids)
        return np.unique(event_keys(t[sel], lane[sel]))
    for pair, lane_ids, t_from, t_to in own:
        g = owned(got_t[pair], lane_ids, t_from, t_to)
        w = owned(want_t[pair], lane_ids, t_from, t_to)
        if not np.array_equal(g, w):
            miss, extra = np.setdiff1d(w, g), np.setdiff1d(g, w)
            raise SimulationError(
                f"results came out at unexpected cycles on output pair {pair} lanes "
                f"{lane_ids[0]}..{lane_ids[-1]}: {len(miss)} missing (first: "
                f"{key_pairs(miss[:3])}), {len(extra)} unexpected (first: "
                f"{key_pairs(extra[:3])})")
    index = {}
    results = []
    for e in expect:
        v = np.zeros(len(e.t), np.int64)
        for q in set(e.pair.tolist()):
            sel = e.pair == q
            if q not in index:
                index[q] = event_index(events[q])
            v[sel] = read_values(index[q], e.t[sel], e.lane[sel], config.mac)
        out = collect(e.row, e.col, e.t, v, (e.shape[0], e.shape[2]), pre=pre,
                      where=f"{e.mode} sub-array {e.sub.index}")
        measured = int(e.t[e.row >= -1].max()) + 1 - e.start
        results.append(JobResult(C=out, cycles=measured, model_cycles=e.end - e.start,
                                 start=e.start - pre, end=e.end - pre, phase=e.phase,
                                 subarray=e.sub, mode=e.mode, shape=e.shape,
                                 precision=e.precision))
    # the program's last result (drain zeros of the compact OS PE are not results)
    last = max((r.start + r.cycles for r in results), default=0)
    return results, built.model_cycles, last


def run_programs(programs, config, *, simulator, build_root=None, waves=None):
    """Play every program (list of phases, see the module doc) in ONE simulator run,
    each after its own reset; a list of :class:`ProgramResult`."""
    if not isinstance(config, SplitConfig):
        raise ValueError(f"expected a SplitConfig, got {type(config).__name__}")
    built = [_build_program(p, config) for p in programs]
    build_root = Path(build_root) if build_root is not None else DEFAULT_BUILD_ROOT
    build_dir = build_root / f"{config.slug}_{simulator}"
    source = _write_design(config, build_dir)
    (build_dir / "jobs").mkdir(parents=True, exist_ok=True)
    job_dir = Path(tempfile.mkdtemp(dir=build_dir / "jobs", prefix="run-"))
    try:
        manifest = []
        for i, b in enumerate(built):
            inp = job_dir / f"p{i}_in.npz"
            np.savez(inp, **{name: _pack(data, bits)
                             for name, (data, bits) in program_lanes(b).items()})
            manifest.append({"input": str(inp), "output": str(job_dir / f"p{i}_out.npz"),
                             "length": b.length})
        spec = job_dir / "programs.json"
        spec.write_text(json.dumps({"outputs": _out_pairs(config), "programs": manifest}))
        outcome = run_cocotb(sources=[source], toplevel=SPLIT_TOPLEVEL,
                             test_module="sim.tb.split", simulator=simulator,
                             build_dir=build_dir, extra_env={PROGRAMS_ENV: str(spec)},
                             testcase="run_programs", waves=waves)
        if not outcome.ok:
            raise SimulationError(f"{simulator}: split bench failed: {outcome.summary()}")
        out = []
        for b, entry in zip(built, manifest):
            with np.load(entry["output"]) as tr:
                trace = {k: tr[k] for k in tr.files}
            jobs, total, last = _decode(b, trace_events(trace, config), config)
            out.append(ProgramResult(jobs=jobs, cycles=last, model_cycles=total,
                                     sim_seconds=float(trace["seconds"])))
    finally:
        shutil.rmtree(job_dir, ignore_errors=True)
    return out


def run_program(program, config, *, simulator, build_root=None):
    return run_programs([program], config, simulator=simulator, build_root=build_root)[0]


def run_split(mode, jobs, config, *, simulator, build_root=None):
    """One phase: ``jobs[s]`` (a job, a list of jobs, or None) on sub-array ``s`` of
    ``mode``. ValueError if there are more jobs than sub-arrays."""
    return run_program([(mode, list(jobs))], config, simulator=simulator,
                       build_root=build_root)


