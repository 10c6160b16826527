"""``systolic gemm`` on either simulation path and model: ``--path`` and ``--model``.

* ``--path native`` plays the operand streams from a memory file (:mod:`sim.native`),
  ``--path cocotb`` through the cocotb bench (per-cycle Python); ``auto`` (default)
  takes the native path from :data:`NATIVE_FROM_CYCLES` model cycles on.
* ``--model gate`` simulates the gate-level design, ``--model twin`` the same design
  with the behavioural MAC, once Yosys has proven the two equal
  (:func:`sim.native.twin.prove_twin`); ``auto`` (default) takes the twin from
  :data:`TWIN_FROM_CYCLES` model cycles on, on the native path.
"""
from .common import (UsageError, add_array_options, add_mac_options, add_split_options,
                     array_config, check_writable, split_config)

__all__ = ["add_path_options", "register", "choose", "gemm_runner", "run_plain", "run_many",
           "run_split_phase",
           "describe",
           "report_fields", "NATIVE_FROM_CYCLES", "TWIN_FROM_CYCLES"]

NATIVE_FROM_CYCLES = 20_000
TWIN_FROM_CYCLES = 200_000


def add_path_options(g, *, save_stream=True):
    """``--path`` and ``--model`` (and ``--save-stream`` unless ``save_stream`` is
    False: commands that run many simulations)."""
    g.add_argument("--path", choices=["auto", "native", "cocotb"], default="auto",
                   help="simulation path: native (memory file played by a C++ harness / "
                        "Verilog player) or cocotb (per-cycle Python); default auto: "
                        f"native from {NATIVE_FROM_CYCLES:,} model cycles on")
    if save_stream:
        g.add_argument("--save-stream", metavar="FILE.hex",
                       help="native path: also write the operand stream (memory file) "
                            "there, for `systolic play`")
    g.add_argument("--model", choices=["auto", "gate", "twin"], default="auto",
                   help="gate: the gate-level design; twin: the same design with the "
                        "behavioural MAC, after a Yosys proof that both are equal "
                        f"(cached); default auto: twin from {TWIN_FROM_CYCLES:,} model "
                        "cycles on the native path")


def choose(args, cycles, lanes, what, *, job=None):
    """``(path, model)`` for a run of ``cycles`` model cycles on a design with ``lanes``
    input lanes (a split program: also its ``job``, see
    :func:`sim.native.run.check_limits`); UsageError if the chosen path cannot take it."""
    from sim.native.run import PathLimitError, check_limits
    path = args.path
    if path == "auto":
        path = "native" if cycles >= NATIVE_FROM_CYCLES else "cocotb"
    model = args.model
    if model == "auto":
        model = "twin" if path == "native" and cycles >= TWIN_FROM_CYCLES else "gate"
    try:
        check_limits(path, cycles, lanes, what, job=job)
    except PathLimitError as e:
        raise UsageError(f"--path {path}: {e}") from None
    return path, model


def gemm_runner(config, simulator, args, what):
    """A runner for :func:`sim.drivers.blocked.run_blocked`: the GEMMs of one call in one
    simulator run, on the path and model :func:`choose` takes for their model cycles
    together (``runner.choose(jobs)`` tells it beforehand); ``runner.chosen`` lists the
    ``(path, model)`` of every call."""
    from sim.drivers.gemm import gemm_model_cycles
    from sim.native.run import array_layout, input_lanes

    def choose_for(jobs):
        cycles = sum(gemm_model_cycles(A.shape[0], A.shape[1], B.shape[1], config)
                     for A, B in jobs)
        return choose(args, cycles, input_lanes(array_layout(config)), what)

    def run(jobs):
        path, model = choose_for(jobs)
        run.chosen.append((path, model))
        return [(r.C, r) for r in run_many(jobs, config, simulator, path, model, args)]
    run.chosen = []
    run.choose = choose_for
    return run


def _twin(config, model):
    from sim.native.run import design_for
    from sim.native.twin import TwinNotProven
    try:
        return design_for(config, model)
    except TwinNotProven as e:
        raise UsageError(f"--model twin: {e}") from None


def _save_stream(args, path):
    target = getattr(args, "save_stream", None)
    if target and path != "native":
        raise UsageError("--save-stream: only on the native path (--path native)")
    if target:
        check_writable(target, "--save-stream")
    return target


def run_plain(A, B, config, simulator, path, model, args=None):
    """One GEMM on the plain array; the result carries ``path``, ``model``, ``proof``."""
    save = _save_stream(args, path)
    if path == "native":
        from sim.native.run import run_gemms_native
        from sim.native.twin import TwinNotProven
        try:
            return run_gemms_native([(A, B)], config, simulator=simulator, model=model,
                                    save_stream=save)[0]
        except TwinNotProven as e:
            raise UsageError(f"--model twin: {e}") from None
    from sim.drivers.gemm import run_gemm
    design, proof = _twin(config, model)
    result = run_gemm(A, B, design, simulator=simulator)
    result.path, result.model, result.proof = "cocotb", model, proof
    return result


def run_many(jobs, config, simulator, path, model, args=None):
    """Several GEMMs ``[(A, B), ...]`` on the plain array in one simulator run (the
    K-blocks of a block-scaled GEMM); each result carries ``path``, ``model``, ``proof``."""
    save = _save_stream(args, path)
    if path == "native":
        from sim.native.run import run_gemms_native
        from sim.native.twin import TwinNotProven
        try:
            return run_gemms_native(jobs, config, simulator=simulator, model=model,
                                    save_stream=save)
        except TwinNotProven as e:
            raise UsageError(f"--model twin: {e}") from None
    from sim.drivers.gemm import run_gemms
    design, proof = _twin(config, model)
    results = run_gemms(jobs, design, simulator=simulator)
    for result in results:
        result.path, result.model, result.proof = "cocotb", model, proof
    return results


def run_split_phase(mode, work, config, simulator, path, model, args=None):
    """One phase on the split array (``work[s]`` on sub-array ``s``)."""
    save = _save_stream(args, path)
    if path == "native":
        from sim.native.run import run_programs_native
        from sim.native.twin import TwinNotProven
        try:
            return run_programs_native([[(mode, list(work))]], config, simulator=simulator,
                                       model=model, save_stream=save)[0]
        except TwinNotProven as e:
            raise UsageError(f"--model twin: {e}") from None
    from sim.drivers.split import run_split
    design, proof = _twin(config, model)
    result = run_split(mode, work, design, simulator=simulator)
    result.path, result.model, result.proof = "cocotb", model, proof
    return result


def describe(result):
    """One line: which path and model ran (and the twin's proof)."""
    if result.model == "twin":
        return f"{result.path} path, {result.proof.cite()}"
    return f"{result.path} path, gate-level model"


def report_fields(result):
    proof = result.proof
    return {"path": result.path, "model": result.model,
            "twin_proof": None if proof is None else {
                "cite": proof.cite(), "gate": proof.gate, "twin": proof.twin,
                "method": proof.method, "mac_steps": proof.mac_steps,
                "datapath_steps": proof.datapath_steps, "proved_on": proof.proved_on,
                "key": proof.cache_key}}


# ---------------------------------------------------------------- play

def register(sub):
    p = sub.add_parser("play", help="play an operand stream (memory file) on the native "
                                    "player of a design; write its results")
    p.add_argument("design", choices=["array", "split"])
    p.add_argument("--stream", required=True, metavar="FILE.hex",
                   help="the memory file (e.g. from systolic gemm --save-stream)")
    p.add_argument("-o", "--output", required=True, metavar="RESULTS",
                   help="the results: binary result events (Verilator) or result lines "
                        "(Icarus), see sim/native/stream.py")
    p.add_argument("--sim", choices=["verilator", "icarus"], default="icarus",
                   help="simulator (default icarus)")
    p.add_argument("--model", choices=["gate", "twin"], default="gate")
    p.add_argument("--generation", choices=["2005", "2012"], default="2005",
                   help="icarus: -g mode of the player build (default 2005)")
    add_mac_options(p)
    add_array_options(p)
    add_split_options(p)
    p.set_defaults(func=cmd_play)
    return p


def cmd_play(args):
    """``systolic play``: bad streams are bad input (one line, exit 2, no file)."""
    import os
    from pathlib import Path
    from sim.native.build import build_player, run_player
    from sim.native.run import array_layout, design_for, split_layout
    from sim.native.stream import StreamError, decode_results
    from sim.native.twin import TwinNotProven
    out = check_writable(args.output, "-o")
    stream = Path(args.stream)
    if not stream.is_file():
        raise UsageError(f"--stream: cannot read {stream}: no such file")
    if args.design == "array":
        config = array_config(args)
        layout_of, text_of = array_layout, (lambda c: c.verilog())
    else:
        args.dataflow = args.dataflow or "ws"
        config = split_config(args)
        layout_of, text_of = split_layout, (lambda c: c.verilog())
    try:
        design, _ = design_for(config, args.model)
    except TwinNotProven as e:
        raise UsageError(f"--model twin: {e}") from None
    build = build_player(text_of(design), layout_of(design), design.slug, args.sim,
                         model=args.model, generation=args.generation)
    tmp = out.with_name(f".{out.name}.partial")
    try:
        seconds, cpu = run_player(build, stream, tmp)
    except StreamError as e:
        raise UsageError(f"--stream: {e}") from None
    else:
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    with open(stream, "rb") as f:
        jobs = int(f.read(64).split()[2], 16)       # the player has checked the header
    traces = decode_results(out, layout_of(design), jobs)
    events = sum(len(tr[f"events_{i}"][0]) for tr in traces for i in range(
        len(layout_of(design).outputs)))
    print(f"{len(traces)} job(s), {events} results in {cpu:.2f} s CPU on {args.sim} "
          f"({design.slug}) -> {out}")
    return 0
