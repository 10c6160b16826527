"""RTL simulations as independent jobs of the execution layer (:mod:`sim.execute`).

It sits above the two paths it dispatches to (:mod:`sim.drivers`, :mod:`sim.native`).
A :class:`SimBatch` is one simulator run: GEMMs on an :class:`hdl.array.ArrayConfig`
(:func:`sim.drivers.gemm.run_gemms`) or split programs on an
:class:`hdl.split.SplitConfig` (:func:`sim.drivers.split.run_programs`), on the cocotb
path or the native one (:func:`sim.native.run.run_gemms_native`,
:func:`~sim.native.run.run_programs_native`, with the gate-level model or the twin).
:func:`simulate_many` sends several batches to an executor at once -- a local process
pool by default, or a Dask cluster -- and returns their results in batch order, exactly
what each driver returns when called here. On a cluster worker the design is built
under that worker's own scratch space (:func:`sim.execute.worker_path` of the build
root), so workers need the project and the simulators installed, not a shared file
system. The benches check the results on the client.
"""
import os
from dataclasses import dataclass
from pathlib import Path

from hdl.array import ArrayConfig
from hdl.split import SplitConfig
from sim.drivers.gemm import DEFAULT_BUILD_ROOT as GEMM_BUILD_ROOT, run_gemms
from sim.drivers.split import DEFAULT_BUILD_ROOT as SPLIT_BUILD_ROOT, run_programs
from sim.execute import LocalExecutor, run_jobs, worker_path
from sim.native.build import DEFAULT_NATIVE_ROOT
from sim.native.run import run_gemms_native, run_programs_native
from sim.runner import SimulationError

__all__ = ["SimBatch", "simulate_many", "run_batch"]


@dataclass(frozen=True)
class SimBatch:
    """One simulator run of ``items`` on ``config`` with ``simulator``: ``(A, B)``
    operand pairs for an ArrayConfig, programs (lists of phases) for a SplitConfig.
    ``build_root``: where the design is built (default the driver's own); ``path``:
    ``"cocotb"`` or ``"native"``, whose ``model`` is ``"gate"`` or ``"twin"``."""
    items: tuple
    config: object
    simulator: str
    build_root: Path | None = None
    label: str = ""
    path: str = "cocotb"
    model: str = "gate"

    def __post_init__(self):
        if not isinstance(self.config, (ArrayConfig, SplitConfig)):
            raise TypeError(f"SimBatch config: expected an ArrayConfig or SplitConfig, "
                            f"got {type(self.config).__name__}")
        if self.path not in ("cocotb", "native"):
            raise ValueError(f"SimBatch path: {self.path!r} is not cocotb or native")
        object.__setattr__(self, "items", tuple(self.items))


def run_batch(batch):
    """Run ``batch`` where this is called (a pool process or a cluster worker)."""
    split = isinstance(batch.config, SplitConfig)
    kwargs = {}
    if batch.path == "native":
        run = run_programs_native if split else run_gemms_native
        root, kwargs["model"] = DEFAULT_NATIVE_ROOT, batch.model
    else:
        run = run_programs if split else run_gemms
        root = SPLIT_BUILD_ROOT if split else GEMM_BUILD_ROOT
    return run(list(batch.items), batch.config, simulator=batch.simulator,
               build_root=worker_path(batch.build_root or root), **kwargs)


def simulate_many(batches, *, executor=None, progress=None, where=None):
    """The results of every :class:`SimBatch` (a list per batch, in batch order), run on
    ``executor`` (default a local pool of one process per core, at most one per batch).
    ``progress``: as for :func:`sim.execute.run_jobs`; ``where``: None or a list, filled
    with each batch's ``(where it ran, seconds)``. Every batch runs to the end; then the
    first failure, if any, is raised as :class:`SimulationError` naming the batch and
    where it ran."""
    batches = list(batches)
    if not batches:
        return []
    executor = executor or LocalExecutor(workers=min(len(batches), os.cpu_count() or 1))
    report = run_jobs(batches, run_batch, executor=executor, progress=progress)
    if where is not None:
        where.extend((o.where, o.seconds) for o in report.outcomes)
    for o in report.outcomes:
        if o.error is not None:
            b = batches[o.index]
            raise SimulationError(f"{b.simulator} run {b.label or o.index} of {b.config.slug} "
                                  f"({o.where}): {o.error}")
    return [o.value for o in report.outcomes]
