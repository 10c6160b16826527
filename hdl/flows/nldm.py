"""Static timing of a mapped netlist with a Liberty library's NLDM tables.

:func:`netlist_timing` is the delay estimate of :mod:`hdl.flows.liberty` (``delay_ps``
of ``systolic synth ... --liberty``). Its model, stated so that another timer can be set
up to match it (:mod:`hdl.flows.opensta` does, and agrees within a few tenths of a
percent):

* **Loads**: a net's load is the sum of the input-pin capacitances it drives, per edge
  (the pins' ``rise_capacitance`` for a rising net, ``fall_capacitance`` for a falling
  one, else ``capacitance``); no wire load (the library's ``default_wire_load`` is not
  applied), no output-port load.
* **Inputs**: arrival 0 at every input port, for both edges, with the library's smallest
  slew index (Nangate45: 1.17 ps), as if driven by an ideal source.
* **Clock**: ideal (no clock-tree delay, no skew), with the same smallest slew; flops
  launch at their clock-to-Q delay (``rising_edge``/``falling_edge`` arcs: ``cell_rise``
  for a rising Q, ``cell_fall`` for a falling one). A net driven through a clock-gating
  cell (``CLKGATE_X1``: ``CK`` -> ``GCK``) only reaches clock pins, which are not
  endpoints, so gated clocks are ideal too.
* **Edges**: rise and fall are propagated separately. An arc's ``timing_sense`` picks
  the input edge that causes each output edge (``positive_unate``: the same edge,
  ``negative_unate``: the opposite one, ``non_unate`` or none given: both); the delay is
  the table of the output edge (``cell_rise``/``cell_fall``) at the input edge's slew
  and the net's load, and a net's slew per edge is the largest slew any of its arcs
  gives it (the slew merge of OpenSTA).
* **Endpoints**: output ports (required at the clock edge: no output delay) and every
  data input of a flop, latch or clock-gating cell (not clock pins), plus the setup
  (or recovery) constraint of the data edge at the data slew and the clock slew. The
  result is the minimum clock period of the design on its own.

Tables are interpolated bilinearly and extrapolated linearly beyond their last index
(a high-fanout net's load often is), as OpenSTA does.
"""
import bisect
from collections import defaultdict

from .synth import ToolError, topological_order

__all__ = ["LibertyError", "netlist_timing", "lookup"]

RISE, FALL = 0, 1
_TABLES = (("cell_rise", "rise_transition"), ("cell_fall", "fall_transition"))
_EDGE_ARCS = ("rising_edge", "falling_edge")
_CHECK_ARCS = ("setup", "recovery")


class LibertyError(ToolError):
    """A Liberty library cannot be fetched, read or used. The message is one line."""


def _interp(xs, x):
    if len(xs) == 1:
        return 0, 0, 0.0
    i = min(max(bisect.bisect_left(xs, x) - 1, 0), len(xs) - 2)
    return i, i + 1, (x - xs[i]) / (xs[i + 1] - xs[i])


def lookup(tab, *, slew, load, clk_slew=0.0):
    """One NLDM table at an input slew, an output load and (constraints) a clock slew;
    bilinear inside the table, linear extrapolation outside."""
    def var(v):
        if "capacitance" in v:
            return load
        if v.startswith("related_pin"):
            return clk_slew
        return slew
    x1, x2 = var(tab["v1"]), var(tab["v2"])
    i0, i1, f = _interp(tab["i1"], x1)
    j0, j1, g = _interp(tab["i2"], x2)
    v = tab["values"]

    def at(i, j):
        row = v[min(i, len(v) - 1)]
        return row[min(j, len(row) - 1)]
    top = at(i0, j0) * (1 - g) + at(i0, j1) * g
    bot = at(i1, j0) * (1 - g) + at(i1, j1) * g
    return top * (1 - f) + bot * f


_lookup = lookup


def _sources(sense, out_edge):
    """The input edges that cause ``out_edge`` through an arc of ``sense``."""
    if sense == "positive_unate":
        return (out_edge,)
    if sense == "negative_unate":
        return (1 - out_edge,)
    return (RISE, FALL)


def _bits(bits):
    return [b for b in bits if not isinstance(b, str)]


def netlist_timing(netlist, top, lib):
    """Critical path of a flat netlist (Yosys ``write_json``) of ``lib`` cells (the
    model of the module docstring). Returns ``{"delay_ps", "path", "endpoint",
    "startpoint", "edge"}``: ``path`` lists the cell types from the startpoint,
    ``edge`` is the data edge at the endpoint (``rise``/``fall``)."""
    mod = netlist["modules"][top]
    cells = lib["cells"]
    scale = lib["scale_ps"]
    some = next((a for c in cells.values() for p in c["pins"].values() for a in p["arcs"]
                 if "cell_rise" in a), None)
    slew0 = some["cell_rise"]["i1"][0] if some else 0.0
    driver, loads = {}, defaultdict(list)
    for cname, c in mod["cells"].items():
        lc = cells.get(c["type"])
        if lc is None:
            raise LibertyError(f"cell {c['type']} ({cname}) is not in {lib['library']}")
        for pin, bits in c["connections"].items():
            d = lc["pins"].get(pin, {}).get("dir", "")
            for b in _bits(bits):
                if d == "output":
                    driver[b] = (cname, pin)
                elif d == "input":
                    loads[b].append((cname, pin))
    # per net and edge: the loads' rise (fall) capacitance for a rising (falling) net
    cap = {b: [sum(cells[mod["cells"][c]["type"]]["pins"][p].get(
               "edge_caps", [cells[mod["cells"][c]["type"]]["pins"][p]["cap"]] * 2)[e]
               for c, p in ls) for e in (RISE, FALL)] for b, ls in loads.items()}
    # arrival[b][edge], slew[b][edge]; pred[(b, edge)] = (cell, input bit, input edge)
    arrival, slew, pred = {}, {}, {}
    for pname, port in mod["ports"].items():
        if port["direction"] == "input":
            for b in _bits(port["bits"]):
                arrival[b], slew[b] = [0.0, 0.0], [slew0, slew0]
                pred[(b, RISE)] = pred[(b, FALL)] = ("input " + pname, None, None)
    comb = []
    for cname, c in mod["cells"].items():
        lc = cells[c["type"]]
        launched = False
        for pin, bits in c["connections"].items():
            p = lc["pins"].get(pin, {})
            edge_arcs = [a for a in p.get("arcs", ()) if a["type"].startswith(_EDGE_ARCS)]
            if p.get("dir") != "output" or not edge_arcs:
                continue
            launched = True
            for b in _bits(bits):
                arrival[b], slew[b] = [0.0, 0.0], [slew0, slew0]
                for edge, (dkey, skey) in enumerate(_TABLES):
                    load = cap.get(b, (0.0, 0.0))[edge]
                    for arc in edge_arcs:
                        if dkey in arc:
                            arrival[b][edge] = max(arrival[b][edge],
                                                   lookup(arc[dkey], slew=slew0, load=load))
                        if skey in arc:
                            slew[b][edge] = max(slew[b][edge],
                                                lookup(arc[skey], slew=slew0, load=load))
                    pred[(b, edge)] = (cname, None, None)
        if not launched or not lc["seq"]:
            comb.append(cname)
    # Combinational cells (and the comb arcs of a clock gate) in topological order.
    inputs_of = {}
    for cname in comb:
        c = mod["cells"][cname]
        lc = cells[c["type"]]
        inputs_of[cname] = [b for pin, bits in c["connections"].items()
                            if lc["pins"].get(pin, {}).get("dir") == "input"
                            for b in _bits(bits)]
    users = defaultdict(list)
    for cname, ins in inputs_of.items():
        for b in ins:
            if b in driver and driver[b][0] in inputs_of:
                users[driver[b][0]].append(cname)
    try:
        order = topological_order(list(inputs_of), users)
    except ValueError:
        raise LibertyError("combinational loop in the mapped netlist") from None
    for cname in order:
        c = mod["cells"][cname]
        lc = cells[c["type"]]
        for pin, bits in c["connections"].items():
            p = lc["pins"].get(pin, {})
            arcs = [a for a in p.get("arcs", ()) if not a["type"].startswith(
                _EDGE_ARCS + _CHECK_ARCS + ("hold", "removal", "min_pulse", "three_state",
                                            "clear", "preset"))]
            if p.get("dir") != "output" or not arcs:
                continue
            for b in _bits(bits):
                arr, sl = [None, None], [0.0, 0.0]
                for edge, (dkey, skey) in enumerate(_TABLES):
                    load = cap.get(b, (0.0, 0.0))[edge]
                    best = None
                    for arc in arcs:
                        if dkey not in arc:
                            continue
                        for rb in _bits(c["connections"].get(arc["related"], [])):
                            if rb not in arrival:
                                continue
                            for src in _sources(arc.get("sense", ""), edge):
                                s_in = slew[rb][src]
                                t = arrival[rb][src] + lookup(arc[dkey], slew=s_in, load=load)
                                if best is None or t > best[0]:
                                    best = (t, rb, src)
                                if skey in arc:
                                    sl[edge] = max(sl[edge], lookup(arc[skey], slew=s_in,
                                                                    load=load))
                    if best is not None:
                        arr[edge] = best[0]
                        pred[(b, edge)] = (cname, best[1], best[2])
                if arr[RISE] is None and arr[FALL] is None:
                    continue
                arrival[b] = [arr[e] if arr[e] is not None else 0.0 for e in (RISE, FALL)]
                slew[b] = [sl[e] or slew0 for e in (RISE, FALL)]
    # Endpoints: (time, bit, edge, where).
    ends = []
    for pname, port in mod["ports"].items():
        if port["direction"] == "output":
            for b in _bits(port["bits"]):
                if b in arrival:
                    for edge in (RISE, FALL):
                        ends.append((arrival[b][edge], b, edge, f"output {pname}"))
    for cname, c in mod["cells"].items():
        lc = cells[c["type"]]
        for pin, bits in c["connections"].items():
            p = lc["pins"].get(pin, {})
            checks = [a for a in p.get("arcs", ()) if a["type"].startswith(_CHECK_ARCS)]
            if p.get("dir") != "input" or p.get("clock") or not (lc["seq"] or checks):
                continue
            for b in _bits(bits):
                if b not in arrival:
                    continue
                for edge, key in enumerate(("rise_constraint", "fall_constraint")):
                    setup = max((lookup(a[key], slew=slew[b][edge], load=0.0, clk_slew=slew0)
                                 for a in checks if key in a), default=0.0)
                    ends.append((arrival[b][edge] + setup, b, edge,
                                 f"{cname}.{pin} ({c['type']})"))
    if not ends:
        return {"delay_ps": 0.0, "path": [], "endpoint": None, "startpoint": None,
                "edge": None}
    worst, bit, edge, where = max(ends, key=lambda e: e[0])
    path, start = [], None
    while bit is not None:
        cname, prev, prev_edge = pred[(bit, edge)]
        if cname.startswith("input "):
            start = cname
            break
        path.append(mod["cells"][cname]["type"])
        start = f"{cname} ({mod['cells'][cname]['type']})"
        bit, edge = prev, prev_edge
    last_edge = max(ends, key=lambda e: e[0])[2]
    return {"delay_ps": round(worst * scale, 1), "path": path[::-1], "endpoint": where,
            "startpoint": start, "edge": ("rise", "fall")[last_edge]}
