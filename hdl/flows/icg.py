"""Integrated clock gates in the gate-level flow (:mod:`hdl.flows.activity`).

A mapped design with clock gates (:mod:`hdl.clock_gate`, :mod:`hdl.pe_gate`) holds the
library's integrated clock-gating cells (Liberty ``clock_gate_clock_pin``,
``clock_gate_enable_pin``, ``clock_gate_out_pin``; Nangate45 ``CLKGATE_X1``). The
simulator does not model their latch: a flop on a gate's output is clocked in a cycle
exactly when the gate's enable net, settled before the rising edge, is 1 (the latch is
transparent while the clock is low, so it holds that value through the high phase, and
the gated clock then has its one rising edge). The gate's own energy is priced by
:meth:`hdl.flows.energy.EnergyModel` (``gate``).
"""
import numpy as np

from .liberty import LibertyError

__all__ = ["compile_gates"]


def compile_gates(sim):
    """``(gate_clock, gate_enable)`` of ``sim`` (a :class:`~hdl.flows.activity.GateSim`
    being built, with ``gates``: ``[(cell, type, {pin: net})]``): ``{gated clock net:
    gate index}`` and the enable net of each gate (int64 array). A gate's clock pin must
    be the clock port (chained gates are refused, one line)."""
    gate_clock, enable = {}, []
    for i, (cname, typ, conn) in enumerate(sim.gates):
        role = sim.lib.cells[typ]["icg"]
        if conn.get(role["clock"]) != sim.clock:
            raise LibertyError(f"clock gate {cname} ({typ}) is not clocked by the clock "
                               "port (chained gates are not simulated)")
        enable.append(conn[role["enable"]])
        gate_clock[conn[role["out"]]] = i
    return gate_clock, np.array(enable, np.int64)
