"""Clocked and gated cycles of every tile of a clock-gated split array (cycle model).

With ``SplitConfig(clock_gate=True)`` (:mod:`hdl.clock_gate`) each tile has its own clock
gate, and the driver (:func:`sim.drivers.split.clock_windows`) opens it exactly over the
windows given here: for every job of a program, the tiles of its sub-array are clocked
from the job's first cycle ``start`` to ``end + hold`` (``end`` = start + the job's
model cycles, :func:`sim.models.program.program_schedule`), where

    hold = CLOCK_HOLD (4) + P + drain_tail(sub)

(the schedule's two tail cycles after the last result, the cycle in which the last
registers return to rest, one spare; plus the MAC's pipeline depth P; plus the drain tail
of the compact OS PE, whose zeros still shift for min(Rs, Cs) - 1 cycles). A tile is
gated in every other cycle of the program. Windows of consecutive jobs overlap or touch,
and a window is cut at the program's end
(:func:`tile_clock_cycles` counts the program's own cycles, 0 .. end - 1; the driver also
clocks the simulation tail after it).

The compact OS PE's power-up flush, which the driver plays before cycle 0 with every
tile clocked, is not part of a program's cycles and not counted here.

:func:`tile_clock_cycles` is what energy per token needs: per tile, cycles clocked and
gated, for one program; :func:`sim.studies.workload_gating.layer_gating` applies it to the
whole and split programs of one decoder layer of a model.
"""
from dataclasses import dataclass

import numpy as np

from hdl.clock_gate import tile_groups
from hdl.split import SplitConfig
from sim.models.program import drain_tail, program_schedule

__all__ = ["CLOCK_HOLD", "hold_cycles", "clock_windows", "TileClock", "tile_clock_cycles"]

#: Cycles after a job's end (its last result + 1) its tiles stay clocked, before P and
#: the drain tail are added (see the module docstring).
CLOCK_HOLD = 4


def hold_cycles(sub, config):
    """Cycles a sub-array's tiles stay clocked after a job's end (module docstring)."""
    return CLOCK_HOLD + config.mac.latency + drain_tail(sub, config)


def clock_windows(program, config):
    """``[(tile groups, t_from, t_to)]``, one per job of ``program`` (shapes or jobs):
    the cycles ``t_from <= t < t_to`` in which the job's tiles must be clocked, in model
    cycles (0 = first cycle after reset); ``t_to`` is not cut at the program's end."""
    if not isinstance(config, SplitConfig):
        raise TypeError(f"expected a SplitConfig, got {type(config).__name__}")
    tr, tc, _, gc = config.grid
    rows, _, _ = program_schedule(program, config)
    return [(tile_groups(sub.r0, sub.c0, sub.rows, sub.cols, tr, tc, gc), start,
             end + hold_cycles(sub, config)) for _, sub, _, start, end, _ in rows]


@dataclass
class TileClock:
    """Per tile (index ``i*GC + j``), over a program's ``cycles``: ``clocked`` and
    ``gated`` cycles (``clocked + gated == cycles``); ``busy``: cycles in which some job
    of the tile runs (start <= t < end), a subset of ``clocked``."""
    cycles: int
    clocked: np.ndarray
    gated: np.ndarray
    busy: np.ndarray

    @property
    def gated_fraction(self):
        """Gated tile-cycles over all tile-cycles (0 for an empty program)."""
        total = self.cycles * len(self.clocked)
        return float(self.gated.sum() / total) if total else 0.0


def tile_clock_cycles(program, config):
    """:class:`TileClock` of ``program`` on ``config`` (its ``clock_gate`` flag is not
    needed: this is what the gates would do). Per tile, a cycle is clocked if it lies in
    a window of :func:`clock_windows`, cut at the program's end."""
    tr, tc, gr, gc = config.grid
    rows, total, _ = program_schedule(program, config)
    mask = np.zeros((gr * gc, total), bool)
    busy = np.zeros((gr * gc, total), bool)
    for groups, t_from, t_to in clock_windows(program, config):
        mask[groups, t_from:min(t_to, total)] = True
    for _, sub, _, start, end, _ in rows:
        busy[tile_groups(sub.r0, sub.c0, sub.rows, sub.cols, tr, tc, gc), start:end] = True
    clocked = mask.sum(axis=1)
    return TileClock(total, clocked, total - clocked, busy.sum(axis=1))
