"""``systolic gemm`` on either simulation path and model: ``--path`` and ``--model``.

* ``--path native`` plays the operand streams from a memory file (:mod:`sim.native`),
  ``--path cocotb`` through the cocotb bench (per-cycle Python); ``auto`` (default)
  takes the native path from :data:`NATIVE_FROM_CYCLES` model cycles on.
* ``--model gate`` simulates the gate-level design, ``--model twin`` the same design
  with the behavioural MAC, once Yosys has proven the two equal
  (:func:`sim.native.twin.prove_twin`); ``auto`` (default) takes the twin from
  :data:`TWIN_FROM_CYCLES` model cycles on, on the native path.
"""
from sim.cli import UsageError

__all__ = ["add_path_options", "choose", "run_plain", "run_split_phase", "describe",
           "report_fields", "NATIVE_FROM_CYCLES", "TWIN_FROM_CYCLES"]

NATIVE_FROM_CYCLES = 20_000
TWIN_FROM_CYCLES = 200_000


def add_path_options(g):
    g.add_argument("--path", choices=["auto", "native", "cocotb"], default="auto",
                   help="simulation path: native (memory file played by a C++ harness / "
                        "Verilog player) or cocotb (per-cycle Python); default auto: "
                        f"native from {NATIVE_FROM_CYCLES:,} model cycles on")
    g.add_argument("--model", choices=["auto", "gate", "twin"], default="auto",
                   help="gate: the gate-level design; twin: the same design with the "
                        "behavioural MAC, after a Yosys proof that both are equal "
                        f"(cached); default auto: twin from {TWIN_FROM_CYCLES:,} model "
                        "cycles on the native path")


def choose(args, cycles, lanes, what):
    """``(path, model)`` for a run of ``cycles`` model cycles on a design with ``lanes``
    input lanes; UsageError if the chosen path cannot take it."""
    from sim.native.run import PathLimitError, check_limits
    path = args.path
    if path == "auto":
        path = "native" if cycles >= NATIVE_FROM_CYCLES else "cocotb"
    model = args.model
    if model == "auto":
        model = "twin" if path == "native" and cycles >= TWIN_FROM_CYCLES else "gate"
    try:
        check_limits(path, cycles, lanes, what)
    except PathLimitError as e:
        raise UsageError(f"--path {path}: {e}") from None
    return path, model


def _twin(config, model):
    from sim.native.run import design_for
    from sim.native.twin import TwinNotProven
    try:
        return design_for(config, model)
    except TwinNotProven as e:
        raise UsageError(f"--model twin: {e}") from None


def run_plain(A, B, config, simulator, path, model):
    """One GEMM on the plain array; the result carries ``path``, ``model``, ``proof``."""
    if path == "native":
        from sim.native.run import run_gemms_native
        from sim.native.twin import TwinNotProven
        try:
            return run_gemms_native([(A, B)], config, simulator=simulator, model=model)[0]
        except TwinNotProven as e:
            raise UsageError(f"--model twin: {e}") from None
    from sim.drivers.gemm import run_gemm
    design, proof = _twin(config, model)
    result = run_gemm(A, B, design, simulator=simulator)
    result.path, result.model, result.proof = "cocotb", model, proof
    return result


def run_split_phase(mode, work, config, simulator, path, model):
    """One phase on the split array (``work[s]`` on sub-array ``s``)."""
    if path == "native":
        from sim.native.run import run_programs_native
        from sim.native.twin import TwinNotProven
        try:
            return run_programs_native([[(mode, list(work))]], config, simulator=simulator,
                                       model=model)[0]
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
