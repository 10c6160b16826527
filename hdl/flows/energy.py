"""Energy of a mapped netlist from its own switching and the Liberty file.

Per net (capacitances in fF, energies in fJ = fF x V^2, V the library's ``nom_voltage``,
1.1 V for Nangate45)::

    C_net    = sum of the input-pin capacitances it drives (``capacitance``)
             + wire load: the library's default wire-load model (Nangate45
               ``5K_hvratio_1_1``) at the net's fanout (:func:`hdl.flows.libpower.wire_cap`)
    E_switch = 1/2 C_net V^2 per toggle (rise or fall)
    E_int    = the driving pin's ``internal_power`` (``rise_power`` per rise, ``fall_power``
               per fall), each arc's table interpolated at the slew of its related input
               net and at C_net, averaged over the pin's arcs (related pins and ``when``
               states alike), plus each load pin's own input ``internal_power`` (flop D
               pins: the arcs whose ``when`` holds with the clock high, as data changes
               in the clock's high phase after the edge here)
    E_clock  = per clocked cycle of each flop: its clock pin's rise and fall internal
               energy at the flop's (D, Q) state (the arc whose ``when`` matches), plus
               C_clk V^2 (two transitions) for its pin capacitance and its share of the
               clock net's wire load (an ideal clock net, no clock tree)
    E_leak   = sum of ``cell_leakage_power`` x the clock period per cycle

Slews: input ports and the clock at the library's smallest slew index; every other net
at the worst (rise/fall) output transition of its driver, propagated in topological order
through the NLDM tables (as :mod:`hdl.flows.liberty` does for delay).

Categories (:data:`ENERGY_CATEGORIES`) follow the mapped netlist's names: a flop by the
name of its Q net inside its own instance (``acc``/``total``: accumulator; ``pipe*``,
``*_dN``: pipeline; ``a_out b_out w_out wact wsh* sw_out v_out last_out a_r b_r``: data
movement; ``psum_out pv_out d_out dv_out drain_*``: drain / partial-sum chain;
``split cfg mode sel cut``: ports); a logic cell by the flops it reaches (accumulator,
pipeline or ``psum_out`` -> arithmetic, else drain, else data movement); every cell of
the top module of a hierarchical design (the split array's muxes and port logic) and
every input-port net -> ports. Switching and a driver's internal energy count for the
driver's category, a load pin's internal energy for the load's, clock energy for
``clock``, leakage for ``leakage``.
"""
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .activity import GateSim
from .capture import capture_activity
from .categories import (ENERGY_CATEGORIES, _CAT, classify_cells, flop_blocks,
                         pe_position)
from .gatemap import mapped_netlist
from .liberty import _lookup as _nldm_lookup, nangate45_liberty, parse_liberty
from .libpower import bool_function, library_power, wire_cap

__all__ = ["ENERGY_CATEGORIES", "EnergyReport", "EnergyModel", "design_energy", "capture",
           "report_from_activity", "classify_cells", "flop_blocks", "pe_position", "TIMINGS",
           "DELAY_QUANTUM_PS"]

#: Time step of the Liberty-delay (timed) simulation.
DELAY_QUANTUM_PS = 5.0
#: Timing modes of :func:`design_energy`.
TIMINGS = ("zero", "unit", "liberty")

def _lookup(tab, *, slew, load, clk_slew=0.0):
    """:func:`hdl.flows.liberty._lookup`, and scalar tables (no index) as their value."""
    if not tab["i1"]:
        return tab["values"][0][0]
    return _nldm_lookup(tab, slew=slew, load=load, clk_slew=clk_slew)


def _mean(xs):
    return sum(xs) / len(xs) if xs else 0.0


def _arcs_at(arcs, pins, state, kind):
    """The ``internal_power`` arcs with a ``kind`` table whose ``when`` holds in
    ``state`` ({pin: 0/1}; pins not named are 0), or all arcs with a ``kind`` table if
    none does."""
    every = [a for a in arcs if kind in a]
    values = {p: int(state.get(p, 0)) for p in pins}
    match = [a for a in every if not a["when"] or bool_function(a["when"], pins)(**values)]
    return match or every


class EnergyModel:
    """The per-net and per-flop energies of one compiled netlist (see the module
    docstring): ``cap`` (fF per net: pins + wire), ``switch`` (fJ per toggle),
    ``rise``/``fall`` (fJ per rise / fall by category, [nets, categories]), ``clock``
    (fJ per clocked cycle per flop and (D, Q) state, [flops, 4]), ``leak_fj`` (per
    cycle by category), ``cell_category``, ``flop_category``."""

    def __init__(self, sim: GateSim, liberty_path, *, period_ns=1.0, wire_load="default"):
        lib = library_power(liberty_path)
        tlib = parse_liberty(liberty_path)
        self.voltage = lib.voltage
        v2 = lib.voltage ** 2
        model = (lib.wire_loads.get(lib.default_wire_load) if wire_load == "default"
                 else lib.wire_loads.get(wire_load) if wire_load else None)
        if wire_load not in ("default", None) and model is None:
            raise ValueError(f"unknown wire-load model {wire_load!r}; allowed: "
                             f"{', '.join(lib.wire_loads)}")
        self.wire_load = (lib.default_wire_load if wire_load == "default" else wire_load)
        self.period_ns = period_ns
        n = sim.n
        pin_cap = np.zeros(n)
        fanout = np.zeros(n, np.int64)
        for net, loads in sim.loads.items():
            for cell, pin in loads:
                pin_cap[net] += lib.cells[sim.cells[cell]]["pins"][pin]["cap"]
                fanout[net] += 1
        for port, nets in sim.outputs.items():
            for net in nets:
                fanout[net] += 1                   # an output port is a load (no pin cap)
        wire = np.array([wire_cap(model, int(f)) for f in fanout])
        self.cap = pin_cap + wire
        self.cap[:2] = 0.0
        clk = sim.clock
        self.clock_cap = self.cap[clk] if clk is not None else 0.0
        self.cap_pins, self.cap_wire, self.fanout = pin_cap, wire, fanout
        self.switch = 0.5 * self.cap * v2
        self.cell_category, self.flop_category = classify_cells(sim)
        slew = self._slews(sim, tlib)
        self.slew = slew
        G = len(ENERGY_CATEGORIES)
        rise = np.zeros((n, G))
        fall = np.zeros((n, G))
        # Switching and driver internal energy: the driver's category.
        driver_cat = np.full(n, _CAT["ports"])
        for net, (cell, pin) in sim.drivers.items():
            driver_cat[net] = _CAT[self.cell_category[cell]]
        if clk is not None:
            driver_cat[clk] = _CAT["clock"]
        rows = np.arange(n)
        rise[rows, driver_cat] += self.switch
        fall[rows, driver_cat] += self.switch
        if clk is not None:
            rise[clk] = fall[clk] = 0.0            # the clock is charged per flop below
        for net, (cell, pin) in sim.drivers.items():
            lc = lib.cells[sim.cells[cell]]
            arcs = lc["pins"][pin]["power"]
            conn = sim.conn[cell]
            er, ef = [], []
            for arc in arcs:
                rel = conn.get(arc["related"])
                s = slew[rel] if rel is not None else slew[0]
                if "rise_power" in arc:
                    er.append(_lookup(arc["rise_power"], slew=s, load=self.cap[net]))
                if "fall_power" in arc:
                    ef.append(_lookup(arc["fall_power"], slew=s, load=self.cap[net]))
            c = _CAT[self.cell_category[cell]]
            rise[net, c] += _mean(er)
            fall[net, c] += _mean(ef)
        # Load pins' own internal energy (not the clock pins: per cycle below).
        flop_cells = {f["cell"] for f in sim.flops}
        for net, loads in sim.loads.items():
            if net == clk:
                continue
            for cell, pin in loads:
                lc = lib.cells[sim.cells[cell]]
                arcs = lc["pins"][pin]["power"]
                if not arcs:
                    continue
                if cell in flop_cells:
                    arcs = [a for a in arcs if self._when_possible(a["when"], lc, high=True)] \
                        or arcs
                c = _CAT[self.cell_category[cell]]
                rise[net, c] += _mean([_lookup(a["rise_power"], slew=slew[net], load=0.0)
                                       for a in arcs if "rise_power" in a])
                fall[net, c] += _mean([_lookup(a["fall_power"], slew=slew[net], load=0.0)
                                       for a in arcs if "fall_power" in a])
        self.rise, self.fall = rise, fall
        # Clock: per flop per (D, Q) state.
        nf = len(sim.flops)
        self.clock = np.zeros((nf, 4))
        s0 = self._slew0(tlib)
        for i, f in enumerate(sim.flops):
            lc = lib.cells[f["type"]]
            ff = lc["ff"]
            ck = ff["clocked_on"].strip()
            ck_net = sim.conn[f["cell"]][ck]          # the clock port or a gated clock
            share = self.cap_wire[ck_net] / max(int(fanout[ck_net]), 1)
            pins = lc["pins"]
            arcs = pins[ck]["power"]
            for code in range(4):
                d, q = code & 1, code >> 1
                er = self._clock_arc(arcs, lc, ff, d, q, "rise_power", s0)
                ef = self._clock_arc(arcs, lc, ff, d, d, "fall_power", s0)
                self.clock[i, code] = er + ef + (pins[ck]["cap"] + share) * v2
        self.flop_group = np.full(nf, _CAT["clock"])
        self.gate = self._gate_energy(sim, lib, v2, s0)
        leak = np.zeros(G)
        for cell, typ in sim.cells.items():
            leak[_CAT["leakage"]] += lib.cells[typ]["leakage_nw"] * period_ns * 1e-3
        self.leak_fj = leak                       # nW x ns = 1e-18 J = 1e-3 fJ
        self.leak_by_cell_category = {}
        for cell, typ in sim.cells.items():
            k = self.cell_category[cell]
            self.leak_by_cell_category[k] = (self.leak_by_cell_category.get(k, 0.0)
                                             + lib.cells[typ]["leakage_nw"] * period_ns * 1e-3)

    def _gate_energy(self, sim, lib, v2, s0):
        """fJ per cycle of each integrated clock gate, closed and open ([gates, 2]): its
        clock pin is charged in every cycle (pin capacitance and its share of the clock
        net's wire, as for a flop's clock pin, plus the pin's internal rise and fall
        energy from the arcs whose ``when`` matches the enable); an open gate adds its
        gated clock output's internal rise and fall energy at that net's load (the flops'
        clock pins on that net are charged per flop, above)."""
        out = np.zeros((len(sim.gates), 2))
        clk = sim.clock
        share = self.cap_wire[clk] / max(int(self.fanout[clk]), 1) if clk is not None else 0.0

        def both(arcs, names, load, state=None):
            """Rise + fall energy of ``arcs``, each kind averaged over its arcs: with
            ``state``, those whose ``when`` holds in it (every other pin 0: the gated
            clock low before the edge); without, all of them."""
            return sum(_mean([_lookup(a[k], slew=s0, load=load) for a in (
                _arcs_at(arcs, names, state, k) if state is not None
                else [a for a in arcs if k in a])])
                for k in ("rise_power", "fall_power"))
        for i, (cell, typ, conn) in enumerate(sim.gates):
            lc = lib.cells[typ]
            role = lc["icg"]
            names = list(lc["pins"])
            ck = lc["pins"][role["clock"]]
            pin_cap = (ck["cap"] + share) * v2
            closed = pin_cap + both(ck["power"], names, 0.0, {role["enable"]: 0})
            opened = (pin_cap + both(ck["power"], names, 0.0, {role["enable"]: 1})
                      + both(lc["pins"][role["out"]]["power"], names,
                             self.cap[conn[role["out"]]]))
            out[i] = closed, opened
        return out

    @staticmethod
    def _slew0(tlib):
        some = next((a for c in tlib["cells"].values() for p in c["pins"].values()
                     for a in p["arcs"] if "rise_transition" in a), None)
        return some["rise_transition"]["i1"][0] if some else 0.0

    def _slews(self, sim, tlib):
        s0 = self._slew0(tlib)
        slew = np.full(sim.n, s0)
        cells = tlib["cells"]

        def out_slew(cell, pin, net):
            best = 0.0
            for arc in cells[sim.cells[cell]]["pins"][pin]["arcs"]:
                rel = sim.conn[cell].get(arc["related"])
                s_in = s0 if rel is None or rel == sim.clock else slew[rel]
                for k in ("rise_transition", "fall_transition"):
                    if k in arc:
                        best = max(best, _lookup(arc[k], slew=s_in, load=self.cap[net],
                                                 clk_slew=s0))
            return best or s0
        for f in sim.flops:
            for key in ("q", "qn"):
                net = f[key]
                if net >= 0 and net in sim.drivers:
                    slew[net] = out_slew(*sim.drivers[net], net)
        self.delay_ps = np.zeros(len(sim.e_out))
        scale = tlib["scale_ps"]
        for lvl in sim.levels:
            for i in lvl:
                net = int(sim.e_out[i])
                cell, pin = sim.drivers[net]
                slew[net] = out_slew(cell, pin, net)
                delay = 0.0
                for arc in cells[sim.cells[cell]]["pins"][pin]["arcs"]:
                    rel = sim.conn[cell].get(arc["related"])
                    s_in = s0 if rel is None else slew[rel]
                    for k in ("cell_rise", "cell_fall"):
                        if k in arc:
                            delay = max(delay, _lookup(arc[k], slew=s_in, load=self.cap[net]))
                self.delay_ps[i] = delay * scale
        return slew

    def delay_steps(self, quantum_ps=DELAY_QUANTUM_PS):
        """Each evaluator's Liberty delay (worst arc, at its input slews and load) in
        steps of ``quantum_ps``, at least 1: the ``delays`` of a timed
        :meth:`hdl.flows.activity.GateSim.run`."""
        return np.maximum(1, np.rint(self.delay_ps / quantum_ps)).astype(np.int64)

    @staticmethod
    def _when_possible(when, lc, *, high):
        """Whether ``when`` can hold with the flop's clock pin at ``high``."""
        if not when:
            return True
        pins = list(lc["pins"])
        f = bool_function(when, pins)
        ck = lc["ff"]["clocked_on"].strip()
        arr = np.arange(1 << len(pins))
        vals = {p: ((arr >> j) & 1).astype(np.uint8) for j, p in enumerate(pins)}
        ok = np.asarray(f(**vals)).astype(bool) & (vals[ck] == int(high))
        return bool(ok.any())

    @staticmethod
    def _clock_arc(arcs, lc, ff, d, q, kind, s0):
        """Mean energy of the clock pin's ``kind`` arcs whose ``when`` holds at D = d,
        Q = q (QN = !q, asynchronous controls inactive); all arcs if none match."""
        pins = lc["pins"]
        state = {}
        qpin = next((p for p, i in pins.items() if i["function"].replace(" ", "")
                     == ff["state"]), None)
        qnpin = next((p for p, i in pins.items() if i["function"].replace(" ", "")
                      == ff["state_n"]), None)
        for p, info in pins.items():
            state[p] = 1                           # RN, SN inactive high
        state[ff["next_state"].strip()] = d
        if qpin:
            state[qpin] = q
        if qnpin:
            state[qnpin] = 1 - q
        return _mean([_lookup(a[kind], slew=s0, load=0.0)
                      for a in _arcs_at(arcs, list(pins), state, kind)])

    def weights(self):
        """The ``weights`` argument of :meth:`hdl.flows.activity.GateSim.run`."""
        w = {"rise": self.rise, "fall": self.fall, "clock": self.clock,
             "flop_group": self.flop_group}
        if len(self.gate):
            w.update(gate=self.gate, gate_group=_CAT["clock"])
        return w


@dataclass
class EnergyReport:
    """Energy of one capture. Energies in pJ: ``total_pj`` over ``cycles``;
    ``categories_pj`` ({category: pJ}, :data:`ENERGY_CATEGORIES`, summing to the total);
    ``components_pj`` (switching, internal, clock, leakage); ``per_cycle_pj`` (float
    [cycles], total per cycle; leakage included) and ``per_cycle_categories_pj``
    ([cycles, categories]). ``toggles_per_net`` (average per net and cycle),
    ``glitch`` (glitches counted), ``timing`` ("zero", "unit", "liberty"), ``voltage``,
    ``period_ns``, ``wire_load``, ``cells``, ``nets``, ``flops``, ``capture_seconds``,
    ``capture_cpu_seconds``, ``cached``."""
    top: str
    cycles: int
    glitch: bool
    total_pj: float
    categories_pj: dict
    components_pj: dict
    per_cycle_pj: np.ndarray = field(repr=False)
    per_cycle_categories_pj: np.ndarray = field(repr=False)
    toggles_per_net: float = 0.0
    voltage: float = 0.0
    period_ns: float = 1.0
    wire_load: str = ""
    library: str = ""
    cells: int = 0
    nets: int = 0
    flops: int = 0
    capture_seconds: float = 0.0
    capture_cpu_seconds: float = 0.0
    map_seconds: float = 0.0
    cached: bool = False
    timing: str = "unit"

    @property
    def per_cycle_mean_pj(self):
        return self.total_pj / self.cycles

    def to_json(self, *, macs=None):
        """JSON-able summary (no per-cycle arrays); with ``macs``, ``pj_per_mac`` too."""
        d = {k: getattr(self, k) for k in (
            "top", "cycles", "glitch", "timing", "total_pj", "categories_pj", "components_pj",
            "toggles_per_net", "voltage", "period_ns", "wire_load", "library", "cells",
            "nets", "flops", "capture_seconds", "capture_cpu_seconds", "map_seconds",
            "cached")}
        d["pj_per_cycle"] = self.total_pj / self.cycles
        if macs:
            d["macs"] = int(macs)
            d["pj_per_mac"] = self.total_pj / macs
            d["categories_pj_per_mac"] = {k: v / macs for k, v in self.categories_pj.items()}
        return d


def report_from_activity(sim, act, model: EnergyModel, *, top, library="", map_seconds=0.0,
                         cached=False):
    """An :class:`EnergyReport` of a capture ``act`` (run with ``model.weights()``)."""
    G = len(ENERGY_CATEGORIES)
    by_cat = act.rise @ model.rise + act.fall @ model.fall
    clock_fj = float((act.clock_states * model.clock).sum())
    if len(model.gate):                       # integrated clock gates, closed and open
        clock_fj += float(model.gate[:, 0].sum()) * act.cycles + float(
            (model.gate[:, 1] - model.gate[:, 0]) @ act.gates_open)
    by_cat[_CAT["clock"]] += clock_fj
    leak_cycle = model.leak_fj
    by_cat = by_cat + leak_cycle * act.cycles
    switching = float(act.rise @ model.switch + act.fall @ model.switch)
    if act.per_cycle is not None:
        per_cycle_cat = act.per_cycle + leak_cycle[None, :]
    else:
        per_cycle_cat = np.zeros((0, G))
    total = float(by_cat.sum())
    comps = {"switching": switching, "internal": total - switching - clock_fj
             - float(leak_cycle.sum()) * act.cycles,
             "clock": clock_fj, "leakage": float(leak_cycle.sum()) * act.cycles}
    return EnergyReport(
        top=top, cycles=act.cycles, glitch=act.glitch, total_pj=total / 1000,
        categories_pj={c: float(by_cat[i]) / 1000 for i, c in enumerate(ENERGY_CATEGORIES)},
        components_pj={k: v / 1000 for k, v in comps.items()},
        per_cycle_pj=per_cycle_cat.sum(axis=1) / 1000,
        per_cycle_categories_pj=per_cycle_cat / 1000,
        toggles_per_net=float(act.toggles.sum()) / act.cycles / max(sim.n - 2, 1),
        voltage=model.voltage, period_ns=model.period_ns, wire_load=model.wire_load or "",
        library=library, cells=len(sim.cells), nets=sim.n - 2, flops=len(sim.flops),
        timing=act.timing, capture_seconds=act.seconds, capture_cpu_seconds=act.cpu_seconds,
        map_seconds=map_seconds, cached=cached)


def _timing(glitch, timing):
    if timing is None:
        return "unit" if glitch else "zero"
    if timing not in TIMINGS:
        raise ValueError(f"unknown timing {timing!r}; allowed: {', '.join(TIMINGS)}")
    return timing


def capture(verilog, top, stimulus, *, cycles=None, glitch=True, timing=None, warmup=0,
            period_ns=1.0, liberty=None, flow="synth", wire_load="default",
            clock_enable=None, cache=True, progress=None):
    """The steps of :func:`design_energy`, returned for callers that need more than the
    report (the OpenSTA cross-check): ``(GateSim, Activity, EnergyModel, mapped)``
    (``mapped``: :func:`hdl.flows.gatemap.mapped_netlist`'s result, with ``cached`` set
    to whether the activity came from the cache)."""
    timing = _timing(glitch, timing)
    liberty = Path(liberty) if liberty else nangate45_liberty(cache)
    mapped = mapped_netlist(verilog, top, liberty, flow=flow, cache=cache)
    lib = library_power(liberty)
    sim = GateSim(mapped["netlist"], top, lib)
    if cycles is None:
        lengths = {len(np.asarray(v)) for v in stimulus.values()}
        if len(lengths) != 1:
            raise ValueError(f"stimulus ports have different lengths: {sorted(lengths)}")
        cycles = lengths.pop()
    model = EnergyModel(sim, liberty, period_ns=period_ns, wire_load=wire_load)
    sim, act, cached = capture_activity(
        mapped["netlist"], top, lib, stimulus, cycles, glitch=timing != "zero",
        delays=model.delay_steps() if timing == "liberty" else None, warmup=warmup,
        weights=model.weights(), clock_enable=clock_enable, cache=cache,
        key_extra={"period_ns": period_ns, "wire_load": model.wire_load},
        progress=progress, sim=sim)
    return sim, act, model, {**mapped, "cached": cached, "library": lib.name}


def design_energy(verilog, top, stimulus, *, cycles=None, glitch=True, timing=None,
                  warmup=0, period_ns=1.0, liberty=None, flow="synth", wire_load="default",
                  clock_enable=None, cache=True, progress=None):
    """Energy of ``verilog`` (top module ``top``) mapped to ``liberty`` (default
    Nangate45) and simulated on ``stimulus`` ({input port: ints [T] or uint8 bits
    [T, width]}; the clock is implicit, one rising edge per cycle; ports not named stay 0).
    ``cycles``: T (default: the stimulus length). ``warmup``: leading cycles not counted
    (reset, pipeline fill). ``timing``: "zero" (functional toggles), "unit" (unit delay
    per cell, glitches counted) or "liberty" (each cell's NLDM delay at its load, 5 ps
    steps); default from ``glitch`` (True: "unit", False: "zero").
    ``clock_enable``: ``(block per flop, bool [T, blocks])``, flops of a disabled block
    not clocked in that cycle (an ideal clock gate; see
    :meth:`hdl.flows.activity.GateSim.run` and :func:`flop_blocks`). ``period_ns``: the
    clock period leakage is charged over. Returns an :class:`EnergyReport`; raises
    :class:`~hdl.flows.liberty.LibertyError` for a library it cannot use, ValueError for
    a bad stimulus."""
    sim, act, model, mapped = capture(
        verilog, top, stimulus, cycles=cycles, glitch=glitch, timing=timing, warmup=warmup,
        period_ns=period_ns, liberty=liberty, flow=flow, wire_load=wire_load,
        clock_enable=clock_enable, cache=cache, progress=progress)
    return report_from_activity(sim, act, model, top=top, library=mapped["library"],
                                map_seconds=mapped["seconds"], cached=mapped["cached"])
