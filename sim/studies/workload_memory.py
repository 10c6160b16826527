"""A model's real GEMM shapes on the split tile from memory (``systolic workload --rtl
--from-memory``): the whole and the split program of
:func:`sim.studies.workload_rtl.prepare_rtl_shapes`, played on the split tile
(:mod:`hdl.tile.split`) by :func:`sim.drivers.split_tile.run_program_from_memory`
(cocotb, gate-level array): every phase in rounds (round r starts the r-th job of every
sub-array together), operands written into the tiles' memories before each start, C read
back. Each C must equal numpy; each program's RTL cycles (the sum of its starts' command
to done) the model (:mod:`sim.models.split_tile`). The host's writes and reads between
starts are not counted.
"""
import dataclasses

import numpy as np

from hdl.array import ArrayConfig
from hdl.mac import ConfigError
from hdl.tile import TileConfig
from hdl.tile.split import SplitTileConfig
from sim.drivers.split_tile import program_starts, fit_memories, run_program_from_memory

__all__ = ["memory_tile_config", "run_memory_shapes", "memory_markdown"]


def memory_tile_config(split, programs, width=None):
    """The split tile for the bare split array ``split`` (WS, square, square tiles, grid
    2..4) with memories just large enough for ``programs``; ``width``: bits per A/B bank
    (default: one line per edge vector). ConfigError (one line) otherwise."""
    tr, tc, gr, gc = split.grid
    if split.dataflow != "ws" or split.rows != split.cols or tr != tc or split.fusion != "none":
        raise ConfigError("dataflow", "the split tile runs a square WS array of square "
                                      "tiles, int4 (use --dataflow ws)")
    sub = TileConfig(array=ArrayConfig(tr, tr, "ws", split.mac),
                     width=width or 4 * tr, depth=2, c_depth=2)
    grid_cfg = SplitTileConfig(sub, gr)          # checks the grid
    depth, c_depth = 2, 2
    for program in programs:
        starts, _ = program_starts(program, grid_cfg)
        d, c = fit_memories(starts, sub, gr)
        depth, c_depth = max(depth, d), max(c_depth, c)
    return SplitTileConfig(dataclasses.replace(sub, depth=depth, c_depth=c_depth), gr)


def run_memory_shapes(prep, *, width=None, build_root=None):
    """Play ``prep`` (a :class:`sim.studies.workload_rtl.RtlShapes`) from memory; returns
    the JSON row (AssertionError on any difference from numpy or the model)."""
    whole, split = prep.batch.items
    cfg = memory_tile_config(prep.config, [whole, split], width)
    res = {}
    for name, program in (("whole", whole), ("split", split)):
        r = run_program_from_memory(program, cfg, build_root=build_root)
        for C, E in zip(r.C, r.expected):
            if not np.array_equal(C, E):
                raise AssertionError(f"{name} from memory: C differs from numpy")
        if r.cycles != r.model_cycles:
            raise AssertionError(f"{name} from memory: RTL {r.cycles} cycles, model "
                                 f"{r.model_cycles}")
        res[name] = {"rtl_cycles": r.cycles, "model_cycles": r.model_cycles,
                     "starts": len(r.starts)}
    macs = sum(g.macs for g in prep.gemms)
    pes = prep.config.rows * prep.config.cols
    for v in res.values():
        v["utilization"] = round(macs / (pes * v["rtl_cycles"]), 5)
    return {"model": prep.model.name, "tile": cfg.slug, "width": cfg.sub.width,
            "depth": cfg.sub.depth, "c_depth": cfg.sub.c_depth, "macs": macs, **res,
            "bare_split_model_cycles": prep.plan.cycles,
            "speedup": round(res["whole"]["rtl_cycles"] / res["split"]["rtl_cycles"], 3),
            "c_equal": True, "cycles_equal": True}


def memory_markdown(row):
    from sim.studies.tables import markdown_table
    rows = [[k, row[k]["starts"], row[k]["rtl_cycles"], row[k]["model_cycles"],
             f"{100 * row[k]['utilization']:.2f}%"] for k in ("whole", "split")]
    return "\n".join([
        markdown_table(["program", "starts", "RTL cycles", "model cycles", "utilization"],
                       rows), "",
        f"from memory on the split tile {row['tile']}: whole/split {row['speedup']:.2f}x "
        f"fewer cycles split (the bare split program's model: "
        f"{row['bare_split_model_cycles']} cycles)"])
