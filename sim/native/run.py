"""GEMMs and split programs on the native path (:mod:`sim.native`): the schedules of
:mod:`sim.drivers.gemm` and :mod:`sim.drivers.split`, played from a memory file by the
Verilator harness or the Icarus player, decoded and checked by the same code as the
cocotb path (results in exactly the predicted cycles, C assembled and compared by the
caller, cycles measured from the trace).

Memory: GEMMs (:func:`run_gemms_native`) are written from each job's whole schedule; a
split program (:func:`run_programs_native`) is written job by job and window by window
(:func:`sim.drivers.split.program_chunks`), so Python holds the schedules of the jobs
running at one time and one window, never a whole program's lanes (the limits:
:func:`check_limits`).

``model``: ``"gate"`` simulates the gate-level design; ``"twin"`` the same design with
the behavioural MAC, only after :func:`sim.native.twin.prove_twin` (the result's
``proof`` cites it).
"""
import dataclasses
import os
import shutil
import tempfile
from pathlib import Path


from hdl.array import TOPLEVEL, ArrayConfig
from hdl.pe import os_flag
from hdl.split import SPLIT_TOPLEVEL, SplitConfig
from sim.drivers import gemm as gemm_driver
from sim.drivers import split as split_driver
from sim.drivers.gemm import (GemmResult, build_schedule, check_operands, gemm_model_cycles,
                              _pack)
from sim.models.cycles import scalesim_cycles, utilization
from sim.models.program import normalize_program, program_timeline
from .build import build_player, run_player, DEFAULT_NATIVE_ROOT
from .stream import Layout, encode_stream, iter_results, job_length, records
from .twin import prove_twin, twin_mac

__all__ = ["MODELS", "PATHS", "PathLimitError", "NATIVE_MAX_LANE_BYTES",
           "COCOTB_MAX_CYCLES", "check_limits", "largest_job", "program_limits", "input_lanes",
           "array_layout", "split_layout", "design_for", "run_gemms_native", "run_programs_native"]

MODELS = ("gate", "twin")
PATHS = ("native", "cocotb")
#: The native path builds each job's schedule in memory: cycles x input lanes bytes (a
#: GEMM's on the whole array; a split program's largest job's on its sub-array).
NATIVE_MAX_LANE_BYTES = 1 << 30
#: The cocotb bench keeps a Python list of writes per cycle: cycles per job.
COCOTB_MAX_CYCLES = 2_000_000


class PathLimitError(ValueError):
    """A GEMM or program is too large for the chosen path; the message names the limit."""


def input_lanes(layout):
    """Input lanes (4-bit operands or single bits) of a design's layout."""
    ports = layout.inputs
    return sum(bits // (4 if name.removesuffix("_x") in ("a_in", "w_in", "b_in") else 1)
               for name, bits in ports)


def largest_job(program, config):
    """``(cycles, input lanes, (M, K, N))`` of a split program's largest job schedule:
    model cycles x the input lanes of its sub-array as a plain array (the most the
    native path holds in memory for one job); ``(0, 0, None)`` without jobs. Jobs may be
    bare (M, K, N) triples."""
    return program_limits(program, config)[2]


def program_limits(program, config):
    """``(model cycles, input lanes, largest job)`` of a split program: what
    :func:`check_limits` takes for it (``job=`` the last), from one timeline."""
    rows, total = program_timeline(normalize_program(program, config, shapes_only=True),
                                   config)
    best = (0, 0, None)
    for _, sub, _, start, end, shape in rows:
        lanes = input_lanes(array_layout(config.sub_config(sub)))
        if (end - start) * lanes > best[0] * best[1]:
            best = (end - start, lanes, shape)
    return total, input_lanes(split_layout(config)), best


def check_limits(path, cycles, lanes, what, *, job=None):
    """PathLimitError if a run of ``cycles`` on a design with ``lanes`` input lanes
    exceeds ``path``'s limit. ``job``: for a split program, its :func:`largest_job`; the
    native limit then applies to that job's schedule (the program is streamed)."""
    if path == "native" and job is not None:
        jc, jl, shape = job
        if jc * jl > NATIVE_MAX_LANE_BYTES:
            M, K, N = shape
            raise PathLimitError(
                f"{what}: its GEMM {M}x{K}x{N} needs {jc:,} cycles x {jl} input lanes = "
                f"{jc * jl:,} bytes of schedule; the native path's limit is "
                f"{NATIVE_MAX_LANE_BYTES:,} per job (each job's schedule is built in "
                f"memory); split that GEMM into smaller jobs")
    elif path == "native" and cycles * lanes > NATIVE_MAX_LANE_BYTES:
        raise PathLimitError(
            f"{what} needs {cycles:,} cycles x {lanes} input lanes = {cycles * lanes:,} "
            f"bytes of schedule; the native path's limit is {NATIVE_MAX_LANE_BYTES:,} "
            f"(the schedule is built in memory); split the GEMM into smaller ones")
    if path == "cocotb" and cycles > COCOTB_MAX_CYCLES:
        raise PathLimitError(
            f"{what} needs {cycles:,} cycles; the cocotb path's limit is "
            f"{COCOTB_MAX_CYCLES:,} cycles per run (a Python list per cycle); use the "
            f"native path")


def design_for(config, model):
    """``(config to build, proof or None)``: the twin's config only once proved."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; allowed: {', '.join(MODELS)}")
    if model == "gate":
        return config, None
    proof = prove_twin(config.mac)
    return dataclasses.replace(config, mac=twin_mac(config.mac)), proof


def array_layout(config: ArrayConfig):
    R, C, n = config.rows, config.cols, config.mac.width
    if config.dataflow == "ws":
        ins = [("a_in", R * n), ("a_valid", R), ("w_in", C * n), ("w_en", C)]
        if config.double_buffer:
            ins.append(("a_swap", R))
    else:
        ins = [("a_in", R * n), (f"a_{os_flag(config.double_buffer)}", R), ("b_in", C * n)]
    if config.clock_gate:
        ins.append(("clk_en", R))
    return Layout.of(TOPLEVEL, ins,
                     [("c_valid", "c_out", config.out_lanes, config.mac.acc_width)],
                     settle=config.pe_gate)


def split_layout(config):
    ins = [(name, bits) for name, (d, bits) in config.ports().items() if d == "in"]
    return Layout.of(SPLIT_TOPLEVEL, ins, split_driver._out_pairs(config),
                     settle=config.pe_gate)


def _copy_atomic(source, target):
    """Copy ``source`` to ``target`` via a temporary file and a rename (never a
    half-written file; the stream is copied, not read into memory)."""
    target = Path(target)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise


def _play(design_text, layout, slug, job_records, simulator, model, build_root, generation,
          flags=None, save_stream=None, *, take):
    """Build (cached) and play; ``([take(j, trace) for every job j], build, wall
    seconds)``. Each job's trace (:func:`~sim.native.stream.iter_results`) is handed to
    ``take`` as it is read and dropped after, so a run holds one job's result events at a
    time. ``save_stream``: also keep a copy of the stream there."""
    root = Path(build_root) if build_root is not None else DEFAULT_NATIVE_ROOT
    build = build_player(design_text, layout, slug, simulator, model=model,
                         generation=generation, build_root=root, flags=flags)
    runs = build.directory / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=runs, prefix="run-"))
    lengths = [job_length(rec) for rec in job_records]
    total = sum(lengths) or 1
    out = []
    try:
        stream = work / "stream.hex"
        results = work / ("results.bin" if simulator == "verilator" else "results.txt")
        encode_stream(stream, layout, job_records)
        del job_records                     # the callers' generators are spent
        if save_stream is not None:
            _copy_atomic(stream, save_stream)
        seconds, cpu = run_player(build, stream, results)
        for j, trace in enumerate(iter_results(results, layout, len(lengths))):
            if trace["seconds"] < 0:        # the Icarus player: share the run's times
                trace["seconds"] = seconds * lengths[j] / total
                trace["cpu_seconds"] = cpu * lengths[j] / total
            out.append(take(j, trace))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out, build, seconds


def run_gemms_native(jobs, config: ArrayConfig, *, simulator, model="gate",
                     build_root=None, generation="2005", progress=None, flags=None,
                     save_stream=None):
    """Like :func:`sim.drivers.gemm.run_gemms` on the native path; each result also
    carries ``model``, ``proof`` (the twin's :class:`~sim.native.twin.TwinProof`) and
    ``build`` (:class:`~sim.native.build.NativeBuild`). ``flags``: Verilator flags
    instead of the model's (flag studies); ``save_stream``: keep the memory file there
    (``systolic play`` replays it)."""
    checked = [check_operands(A, B, config.mac) for A, B in jobs]
    if not checked:
        return []
    layout = array_layout(config)
    lanes = input_lanes(layout)
    for A, B in checked:
        M, K = A.shape
        check_limits("native", gemm_model_cycles(M, K, B.shape[1], config), lanes,
                     f"GEMM {M}x{K}x{B.shape[1]}")
    design, proof = design_for(config, model)
    expect, recs = [], []
    for A, B in checked:
        sched = build_schedule(A, B, config)
        packed = {name: _pack(data, bits) for name, (data, bits) in sched.ports.items()}
        recs.append(records(layout, packed, sched.length))
        expect.append(dataclasses.replace(sched, ports={}))     # the inputs live on in recs only

    def take(n, trace):
        (A, B), sched = checked[n], expect[n]
        expect[n] = None                              # decoded once: let it go
        M, K = A.shape
        N = B.shape[1]
        Cm, measured = gemm_driver._decode(sched, trace["events_0"], config, M, N)
        if progress is not None:
            progress(n + 1, len(checked))
        return GemmResult(
            C=Cm, cycles=measured,
            model_cycles=gemm_model_cycles(M, K, N, config),
            scalesim_cycles=scalesim_cycles(M, K, N, config.rows, config.cols,
                                            config.dataflow),
            macs=M * K * N, utilization=utilization(M, K, N, config.rows, config.cols,
                                                    measured),
            sim_seconds=float(trace["seconds"]), sim_cpu_seconds=float(trace["cpu_seconds"]),
            k_passes=sched.k_passes, folds=sched.folds,
            simulated_cycles=sched.length, path="native", model=model, proof=proof)
    results, build, _ = _play(design.verilog(), layout, design.slug, recs, simulator,
                              model, build_root, generation, flags, save_stream, take=take)
    for result in results:
        result.build, result.build_seconds = build, build.seconds
    return results


def run_programs_native(programs, config, *, simulator, model="gate", build_root=None,
                        generation="2005", save_stream=None):
    """Like :func:`sim.drivers.split.run_programs` on the native path (each
    :class:`~sim.drivers.split.ProgramResult` with ``path``, ``model`` and ``proof`` set)."""
    if not isinstance(config, SplitConfig):
        raise ValueError(f"expected a SplitConfig, got {type(config).__name__}")
    layout = split_layout(config)
    for i, p in enumerate(programs):
        cycles, lanes, job = program_limits(p, config)
        check_limits("native", cycles, lanes, f"program {i}", job=job)
    built = [split_driver._build_program(p, config) for p in programs]
    design, proof = design_for(config, model)

    def chunks(b):
        for window in split_driver.program_chunks(b):
            packed = {name: _pack(data, bits) for name, (data, bits) in window.items()}
            yield records(layout, packed, len(next(iter(packed.values()))))
    recs = [(b.length, chunks(b)) for b in built]

    def take(n, trace):
        b, built[n] = built[n], None                  # decoded once: let it go
        events = [trace[f"events_{i}"] for i in range(len(layout.outputs))]
        jobs, total, last = split_driver._decode(b, events, config)
        return split_driver.ProgramResult(
            jobs=jobs, cycles=last, model_cycles=total, sim_seconds=float(trace["seconds"]),
            sim_cpu_seconds=float(trace["cpu_seconds"]), path="native", model=model,
            proof=proof)
    out, build, _ = _play(design.verilog(), layout, design.slug, recs, simulator, model,
                          build_root, generation, save_stream=save_stream, take=take)
    for res in out:
        res.build_seconds = build.seconds
    return out
