"""Which simulation path and model run a GEMM or a split phase, and running it there.

* The *path*: ``native`` plays the operand streams from a memory file (:mod:`sim.native`),
  ``cocotb`` drives the bench cycle by cycle from Python (:mod:`sim.drivers`). ``auto``
  takes the native path from :data:`NATIVE_FROM_CYCLES` model cycles on.
* The *model*: ``gate`` simulates the gate-level design, ``twin`` the same design with the
  behavioural MAC once Yosys has proven the two equal (:func:`sim.native.twin.prove_twin`).
  ``auto`` takes the twin from :data:`TWIN_FROM_CYCLES` model cycles on, on the native path.

Every result these runners return carries ``path``, ``model`` and ``proof`` (the twin's
proof, or None). A choice that cannot run raises :class:`PathError`, naming the option at
fault (the CLI prints it as bad input); the CLI itself only parses and prints.
"""
from sim.native.run import PathLimitError, check_limits

__all__ = ["NATIVE_FROM_CYCLES", "TWIN_FROM_CYCLES", "PathError", "choose", "gemm_runner",
           "run_gemms_on", "run_split_phase", "describe", "report_fields"]

#: Model cycles from which ``--path auto`` takes the native path.
NATIVE_FROM_CYCLES = 20_000
#: Model cycles from which ``--model auto`` takes the twin (on the native path).
TWIN_FROM_CYCLES = 200_000


class PathError(ValueError):
    """A path or model that cannot run the job: ``option`` (``"--path"`` or
    ``"--model"``) and a one-line reason with the fix."""

    def __init__(self, option, message):
        super().__init__(message)
        self.option = option


def choose(path="auto", model="auto", *, cycles, lanes=None, what="the run", job=None,
           native=True):
    """``(path, model)`` for a run of ``cycles`` model cycles: ``auto`` resolved by the
    thresholds above (``native=False``: the native path is not available, so ``auto``
    stays on cocotb). With ``lanes`` (the design's input lanes; a split program: also its
    ``job``, see :func:`sim.native.run.check_limits`) the chosen path's size limits are
    checked: :class:`PathError` if it cannot take the run."""
    if path == "auto":
        path = "native" if native and cycles >= NATIVE_FROM_CYCLES else "cocotb"
    if model == "auto":
        model = "twin" if path == "native" and cycles >= TWIN_FROM_CYCLES else "gate"
    if lanes is not None:
        try:
            check_limits(path, cycles, lanes, what, job=job)
        except PathLimitError as e:
            raise PathError("--path", f"{path}: {e}") from None
    return path, model


def _twin(fn):
    """``fn()``, a twin that failed its proof reported as a :class:`PathError`."""
    from sim.native.twin import TwinNotProven
    try:
        return fn()
    except TwinNotProven as e:
        raise PathError("--model", f"twin: {e}") from None


def _marked(results, path, model, proof):
    for result in results:
        result.path, result.model, result.proof = path, model, proof
    return results


def run_gemms_on(jobs, config, simulator, path, model, *, save_stream=None):
    """GEMMs ``[(A, B), ...]`` on the plain array ``config`` in one simulator run, on
    ``path`` with ``model`` (both resolved, see :func:`choose`); ``save_stream``: native
    path only, also write the operand stream there."""
    if path == "native":
        from sim.native.run import run_gemms_native
        return _twin(lambda: run_gemms_native(jobs, config, simulator=simulator,
                                              model=model, save_stream=save_stream))
    from sim.drivers.gemm import run_gemms
    from sim.native.run import design_for
    design, proof = _twin(lambda: design_for(config, model))
    return _marked(run_gemms(jobs, design, simulator=simulator), "cocotb", model, proof)


def run_split_phase(mode, work, config, simulator, path, model, *, save_stream=None):
    """One phase on the split array ``config`` (``work[s]`` on sub-array ``s``)."""
    if path == "native":
        from sim.native.run import run_programs_native
        return _twin(lambda: run_programs_native(
            [[(mode, list(work))]], config, simulator=simulator, model=model,
            save_stream=save_stream)[0])
    from sim.drivers.split import run_split
    from sim.native.run import design_for
    design, proof = _twin(lambda: design_for(config, model))
    return _marked([run_split(mode, work, design, simulator=simulator)], "cocotb", model,
                   proof)[0]


def gemm_runner(config, simulator, *, path="auto", model="auto", what="GEMM",
                save_stream=None):
    """A runner for :func:`sim.drivers.blocked.run_blocked`: the GEMMs of one call in one
    simulator run, on the path and model :func:`choose` takes for their model cycles
    together (``runner.choose(jobs)`` tells it beforehand); ``runner.chosen`` lists the
    ``(path, model)`` of every call."""
    from sim.drivers.gemm import gemm_model_cycles
    from sim.native.run import array_layout, input_lanes

    def choose_for(jobs):
        cycles = sum(gemm_model_cycles(A.shape[0], A.shape[1], B.shape[1], config)
                     for A, B in jobs)
        return choose(path, model, cycles=cycles, what=what,
                      lanes=input_lanes(array_layout(config)))

    def run(jobs):
        got = choose_for(jobs)
        run.chosen.append(got)
        return [(r.C, r) for r in run_gemms_on(jobs, config, simulator, *got,
                                               save_stream=save_stream)]
    run.chosen = []
    run.choose = choose_for
    return run


def describe(result):
    """One line: which path and model ran (and the twin's proof)."""
    if result.model == "twin":
        return f"{result.path} path, {result.proof.cite()}"
    return f"{result.path} path, gate-level model"


def report_fields(result):
    """The path, model and twin proof of a result, for a JSON report."""
    proof = result.proof
    return {"path": result.path, "model": result.model,
            "twin_proof": None if proof is None else {
                "cite": proof.cite(), "gate": proof.gate, "twin": proof.twin,
                "method": proof.method, "mac_steps": proof.mac_steps,
                "datapath_steps": proof.datapath_steps, "proved_on": proof.proved_on,
                "key": proof.cache_key}}
