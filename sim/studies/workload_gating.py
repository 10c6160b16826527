"""Clocked and gated tile-cycles of one decoder layer of a model, whole against split.

For energy per token with clock gating: :func:`layer_gating` takes a model
(:mod:`sim.models.workload`), a phase (decode: one token per sequence) and a
:class:`hdl.split.SplitConfig`, builds the two programs of one decoder layer that
:func:`sim.studies.workload.compare_workload` times --

* ``whole``: every GEMM instance of the layer one after another on the whole array;
* ``split``: stage by stage, each stage scheduled on the sub-arrays by
  :func:`sim.studies.workload.schedule_stage`;

-- and counts, per tile, the cycles its clock runs and the cycles it is gated
(:func:`sim.models.gating.tile_clock_cycles`: a tile is clocked from each of its jobs'
start to the job's end + 4 + P (+ the compact OS drain tail), gated otherwise).
Ungated, every tile is clocked in every cycle of the program.

Energy per token then is, per program: ``sum over tiles of (clocked cycles x E_clocked +
gated cycles x E_gated)`` with the per-tile-cycle energies of the energy flow (a gated
tile still leaks), divided by the tokens of the phase (``batch``).
"""
from hdl.split import SplitConfig
from sim.models.gating import tile_clock_cycles
from sim.models.workload import ModelShape, Phase, layer_gemms
from sim.studies.workload import _program, _stages, schedule_stage

__all__ = ["layer_programs", "layer_gating", "gating_markdown"]


def layer_programs(model, phase, config, *, stack_gqa=False, kind=None):
    """``{"whole": program, "split": program}`` of one decoder layer (shapes only);
    ``kind``: its :class:`~sim.models.llm_config.LayerKind` (needed for a model of
    several kinds, see :func:`sim.models.workload.layer_gemms`)."""
    if not isinstance(model, ModelShape) or not isinstance(phase, Phase):
        raise TypeError("expected a ModelShape and a Phase")
    if not isinstance(config, SplitConfig):
        raise TypeError(f"expected a SplitConfig, got {type(config).__name__}")
    gemms = layer_gemms(model, phase, stack_gqa=stack_gqa, kind=kind)
    shapes = [g.shape for _, group in _stages(gemms) for g in group for _ in range(g.count)]
    plans = [schedule_stage(group, config) for _, group in _stages(gemms)]
    return {"whole": [("whole", [shapes])], "split": _program(plans)}


def layer_gating(model, phase, config, *, stack_gqa=False, kind=None):
    """Per program (``whole``, ``split``): ``{"cycles", "tiles", "clocked", "gated",
    "busy", "gated_fraction", "tokens"}``; ``clocked``/``gated``/``busy`` are lists, one
    entry per tile (index ``i*GC + j``). Ungated, a tile is clocked all ``cycles``."""
    out = {}
    for name, program in layer_programs(model, phase, config, stack_gqa=stack_gqa,
                                        kind=kind).items():
        tc = tile_clock_cycles(program, config)
        out[name] = {"cycles": tc.cycles, "tiles": len(tc.clocked),
                     "clocked": tc.clocked.tolist(), "gated": tc.gated.tolist(),
                     "busy": tc.busy.tolist(), "gated_fraction": round(tc.gated_fraction, 5),
                     "tokens": phase.batch}
    return out


def gating_markdown(data, config):
    """The table of :func:`layer_gating`'s result ``data`` (one row per program)."""
    from sim.studies.tables import markdown_table
    rows = []
    for name, d in data.items():
        total = d["cycles"] * d["tiles"]
        rows.append([name, d["cycles"], d["tiles"], sum(d["busy"]), sum(d["clocked"]),
                     sum(d["gated"]), f"{100 * d['gated_fraction']:.1f}%",
                     f"{min(d['clocked'])}..{max(d['clocked'])}", total])
    tr, tc, gr, gc = config.grid
    return (f"### Clock gating per tile, one layer ({config.rows}x{config.cols} array, "
            f"{gr}x{gc} tiles of {tr}x{tc}; tile-cycles)\n\n"
            + markdown_table(["program", "cycles", "tiles", "busy", "clocked", "gated",
                              "gated share", "clocked per tile", "ungated: all clocked"],
                             rows))
