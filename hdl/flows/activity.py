"""Switching activity of a mapped standard-cell netlist, counted net by net.

The netlist comes from :func:`hdl.flows.gatemap.mapped_netlist`.

Simulation (:class:`GateSim`) is this module's own cycle-based evaluator of the mapped
netlist: each output pin of a combinational cell is a truth table built from its Liberty
``function``, evaluated for all cells of one level at once with numpy (inputs gathered,
packed into a table index, looked up). Flops (Liberty ``ff`` groups: ``next_state``,
``clear``, ``preset``) update on the rising edge of the one clock port. Two timing modes:

* **zero delay** (``glitch=False``): cells evaluated in topological order once per cycle;
  a net toggles at most once per cycle (its functional toggles);
* **unit delay** (``glitch=True``): every cell has a delay of one step. At step 0 the new
  flop outputs and primary inputs appear together; at step s every cell whose inputs may
  have changed at step s-1 (s between its shortest and longest path depth from a
  source) is re-evaluated from the values of step s-1, and every change of its output is
  a toggle. The run ends when the deepest cell has settled; the settled values equal the
  zero-delay ones (tested). Hazards that a real, unequal delay would produce or filter
  are modelled only to the extent unit delays differ in path length.

* **Liberty delay** (``delays``): the same, with each cell's own transport delay (its
  NLDM delay at its load and input slews, :meth:`hdl.flows.energy.EnergyModel.delay_steps`,
  in 5 ps steps). Every pulse propagates (no inertial filtering of pulses shorter
  than a gate's delay), so this counts at least the glitches a real gate would pass.

Counts are rises and falls per net, over the cycles after ``warmup`` (reset and pipeline
filling). With ``weights`` (per net energy per rise and per fall, and a group per net)
the per-cycle energy by group is also summed (see :mod:`hdl.flows.energy`). Cached
captures: :func:`hdl.flows.capture.capture_activity`.
"""
import time
from collections import defaultdict

import numpy as np

from .icg import compile_gates
from .liberty import LibertyError
from .libpower import bool_function
from .synth import topological_order

__all__ = ["GateSim", "Activity", "CLOCK_PORTS"]

#: Names of the clock port (the only clock the simulator knows).
CLOCK_PORTS = ("clk", "CLK", "clock")


class Activity:
    """Toggles of one capture: ``rise``/``fall`` (int64 per net, in :attr:`GateSim.nets`
    order), ``cycles`` counted, ``clock_states`` (per flop, cycles spent in each of the
    four ``(D, Q)`` states at the rising edge: int64 [flops, 4], code ``D + 2 Q``), the
    per-cycle energy by group if weights were given (``per_cycle``: float [cycles,
    groups], fJ), ``seconds`` (wall) and ``cpu_seconds`` (this process's CPU time) of
    the simulation, ``glitch`` and ``timing`` ("zero", "unit" or "liberty");
    ``gates_open``: per integrated clock gate, the counted cycles in which it was open."""

    def __init__(self, rise, fall, cycles, clock_states, per_cycle, seconds, glitch,
                 cpu_seconds=0.0, gates_open=None):
        self.rise, self.fall, self.cycles = rise, fall, cycles
        self.clock_states, self.per_cycle = clock_states, per_cycle
        self.gates_open = (np.zeros(0, np.int64) if gates_open is None
                           else np.asarray(gates_open, np.int64))
        self.seconds, self.glitch = seconds, glitch
        self.cpu_seconds = cpu_seconds
        self.timing = "zero" if not glitch else "unit"

    @property
    def toggles(self):
        return self.rise + self.fall


class GateSim:
    """A compiled flat netlist (Yosys JSON of Liberty cells, one module ``top``) ready to
    simulate; see the module docstring. Attributes: ``nets`` (names, one per net index;
    0 and 1 are the constants), ``inputs``/``outputs`` ({port: net indices, bit 0
    first}), ``flops`` (per flop: cell name, type, D/Q/QN nets), ``cells`` (name -> type),
    ``drivers`` (net -> (cell, pin)), ``loads`` (net -> [(cell, pin)])."""

    def __init__(self, netlist, top, lib):
        mod = netlist["modules"][top]
        self.lib = lib
        index = {"0": 0, "1": 1, "x": 0, "z": 0}
        names = ["1'b0", "1'b1"]

        def net(b):
            if isinstance(b, str):
                return index[b]
            if b not in index:
                index[b] = len(names)
                names.append(None)
            return index[b]
        for pname, port in mod["ports"].items():
            for b in port["bits"]:
                net(b)
        self.cells, self.conn = {}, {}
        self.drivers, self.loads = {}, defaultdict(list)
        comb, flops = [], []
        #: integrated clock gates: (cell, type, enable net, gated clock net)
        self.gates = []
        for cname, c in mod["cells"].items():
            lc = lib.cells.get(c["type"])
            if lc is None:
                raise LibertyError(f"cell {c['type']} ({cname}) is not in {lib.name}")
            if lc["statetable"] and not lc.get("icg"):
                raise LibertyError(f"cell {c['type']} ({cname}): latches are not simulated "
                                   "(only the library's integrated clock gates)")
            self.cells[cname] = c["type"]
            conn = self.conn[cname] = {}
            for pin, bits in c["connections"].items():
                if len(bits) != 1:
                    raise LibertyError(f"{cname}.{pin}: {len(bits)} bits on a cell pin")
                conn[pin] = net(bits[0])
                d = lc["pins"].get(pin, {}).get("dir")
                if d == "output":
                    self.drivers[conn[pin]] = (cname, pin)
                elif d == "input":
                    self.loads[conn[pin]].append((cname, pin))
            if lc.get("icg"):
                self.gates.append((cname, c["type"], conn))
            elif lc["ff"] is not None:
                flops.append((cname, c["type"], conn))
            else:
                comb.append((cname, c["type"], conn))
        #: every name of each net (a net inside an instance is also named by its ports)
        self.aliases = defaultdict(list)
        for name, n in sorted(mod["netnames"].items(),
                              key=lambda kv: (kv[1].get("hide_name", 0), len(kv[0]), kv[0])):
            for i, b in enumerate(n["bits"]):
                if not isinstance(b, str) and b in index:
                    full = name if len(n["bits"]) == 1 else f"{name}[{i}]"
                    self.aliases[index[b]].append(full)
                    if names[index[b]] is None:
                        names[index[b]] = full
        self.nets = [n if n is not None else f"n{i}" for i, n in enumerate(names)]
        self.n = len(self.nets)
        self.inputs = {p: [net(b) for b in port["bits"]] for p, port in mod["ports"].items()
                       if port["direction"] == "input"}
        self.outputs = {p: [net(b) for b in port["bits"]] for p, port in mod["ports"].items()
                        if port["direction"] == "output"}
        clocks = [p for p in self.inputs if p in CLOCK_PORTS]
        self.clock = self.inputs[clocks[0]][0] if clocks else None
        self.gate_clock, self.gate_enable = compile_gates(self)
        self._compile_flops(flops)
        self._compile_comb(comb)

    # -- compilation ------------------------------------------------------------------
    def _compile_flops(self, flops):
        lib = self.lib
        self.flops = []
        d, q, qn, clr, pre, gate = [], [], [], [], [], []
        for cname, typ, conn in flops:
            ff = lib.cells[typ]["ff"]
            pins = lib.cells[typ]["pins"]
            clk_pin = ff.get("clocked_on", "")
            ck = conn.get(clk_pin)
            if ck != self.clock and ck not in self.gate_clock:
                raise LibertyError(f"flop {cname} ({typ}) is not clocked by the clock port "
                                   "or a clock gate (derived clocks are not simulated)")
            gate.append(self.gate_clock.get(ck, -1))
            if ff.get("next_state", "").strip() not in pins:
                raise LibertyError(f"flop {typ}: next_state {ff.get('next_state')!r} is "
                                   "not a plain pin")
            qpin = qnpin = None
            for p, info in pins.items():
                if info["dir"] == "output":
                    f = info["function"].replace(" ", "")
                    if f == ff["state"]:
                        qpin = p
                    elif f == ff["state_n"]:
                        qnpin = p
            d.append(conn[ff["next_state"].strip()])
            q.append(conn.get(qpin, -1))
            qn.append(conn.get(qnpin, -1))
            for key, lst in (("clear", clr), ("preset", pre)):
                if key in ff:
                    f = bool_function(ff[key], list(pins))
                    pin_names = [p for p in pins if p in ff[key]]
                    lst.append((len(self.flops), f, {p: conn[p] for p in pin_names
                                                     if p in conn}))
            self.flops.append({"cell": cname, "type": typ, "d": d[-1], "q": q[-1],
                               "qn": qn[-1]})
        self.f_d = np.array(d, np.int64)
        self.f_q = np.array(q, np.int64)
        self.f_qn = np.array(qn, np.int64)
        #: per flop, the index of the clock gate that clocks it, or -1 (the clock port)
        self.f_gate = np.array(gate, np.int64)
        self._gated = np.flatnonzero(self.f_gate >= 0)
        self._clear, self._preset = clr, pre

    def _compile_comb(self, comb):
        lib = self.lib
        evals = []                     # (cell, out pin, out net, input nets, table id)
        tables, table_id = [], {}
        k_max = 1
        for cname, typ, conn in comb:
            pins = lib.cells[typ]["pins"]
            ins = [p for p, i in pins.items() if i["dir"] == "input"]
            k_max = max(k_max, len(ins))
            for p, info in pins.items():
                if info["dir"] != "output" or p not in conn:
                    continue
                key = (typ, p)
                if key not in table_id:
                    if not info["function"]:
                        raise LibertyError(f"cell {typ} pin {p} has no function")
                    f = bool_function(info["function"], ins)
                    combos = np.arange(1 << len(ins))
                    args = {q: ((combos >> j) & 1).astype(np.uint8) for j, q in enumerate(ins)}
                    tt = np.broadcast_to(np.asarray(f(**args), np.uint8),
                                         combos.shape).copy()
                    table_id[key] = len(tables)
                    tables.append(tt)
                evals.append((cname, p, conn[p], [conn.get(q, 0) for q in ins],
                              table_id[key]))
        self.k = k_max
        width = 1 << k_max
        tt = np.zeros((max(len(tables), 1), width), np.uint8)
        for i, t in enumerate(tables):
            reps = width // len(t)
            tt[i] = np.tile(t, reps)            # unused high index bits: don't care
        self.tt = tt.reshape(-1)
        m = len(evals)
        self.e_out = np.array([e[2] for e in evals], np.int64)
        self.e_in = np.zeros((m, k_max), np.int64)
        for i, e in enumerate(evals):
            self.e_in[i, :len(e[3])] = e[3]
        self.e_base = np.array([e[4] * width for e in evals], np.int64)
        self.e_cell = [e[0] for e in evals]
        # Levels: sources (ports, flops, constants) are level 0.
        drv = {e[2]: i for i, e in enumerate(evals)}
        succ = defaultdict(set)
        for i, e in enumerate(evals):
            for b in e[3]:
                if b in drv:
                    succ[drv[b]].add(i)
        try:
            order = topological_order(list(range(m)), succ)
        except ValueError:
            raise LibertyError("combinational loop in the mapped netlist") from None
        lo = np.zeros(m, np.int64)
        hi = np.zeros(m, np.int64)
        const_only = np.zeros(m, bool)
        for i in order:
            ins = [b for b in evals[i][3] if b > 1]
            if not ins:
                const_only[i] = True
                lo[i] = hi[i] = 1
                continue
            los = [lo[drv[b]] if b in drv and not const_only[drv[b]] else 0 for b in ins
                   if not (b in drv and const_only[drv[b]])]
            his = [hi[drv[b]] if b in drv else 0 for b in ins]
            lo[i] = (min(los) if los else 0) + 1
            hi[i] = max(his) + 1
        self.depth = int(hi.max()) if m else 0
        self.levels = [np.nonzero(hi == s)[0] for s in range(1, self.depth + 1)]
        self.windows = [np.nonzero((lo <= s) & (hi >= s) & ~const_only)[0]
                        for s in range(1, self.depth + 1)]
        self._const_only = np.nonzero(const_only)[0]
        # Per level / window, the gathered index arrays (one gather less per step).
        self._level_groups = [self._group(i) for i in self.levels if len(i)]
        self._window_groups = [self._group(i) for i in self.windows if len(i)]

    def timed_windows(self, delays):
        """Per step of a timed run (transport delays ``delays``, int steps >= 1 per
        evaluator, :attr:`e_out` order): ``(groups, steps, ring)`` -- for step s = 1..
        the evaluators whose inputs may change at s - delay, with their delays."""
        d = np.asarray(delays, np.int64)
        if d.shape != self.e_out.shape or (d < 1).any():
            raise ValueError(f"delays: expected {len(self.e_out)} ints >= 1")
        m = len(d)
        drv = {int(n): i for i, n in enumerate(self.e_out)}
        lo = np.zeros(m, np.int64)
        hi = np.zeros(m, np.int64)
        order = [i for lvl in self.levels for i in lvl]
        const = set(self._const_only.tolist())
        for i in order:
            if i in const:
                continue
            ins = [int(b) for b in self.e_in[i] if b > 1 and drv.get(int(b)) not in const]
            los = [lo[drv[b]] if b in drv else 0 for b in ins]
            his = [hi[drv[b]] if b in drv else 0 for b in ins]
            lo[i] = (min(los) if los else 0) + d[i]
            hi[i] = (max(his) if his else 0) + d[i]
        live = np.array([i for i in range(m) if i not in const], np.int64)
        steps = int(hi.max()) if m else 0
        span = hi[live] - lo[live] + 1
        rep = np.repeat(live, span)
        step = np.repeat(lo[live], span) + (np.arange(span.sum()) -
                                            np.repeat(np.cumsum(span) - span, span))
        order = np.argsort(step, kind="stable")
        rep, step = rep[order], step[order]
        bounds = np.searchsorted(step, np.arange(1, steps + 2))
        groups = []
        for s in range(1, steps + 1):
            idx = rep[bounds[s - 1]:bounds[s]]
            groups.append((s, self.e_out[idx], self.e_in[idx].astype(np.intp),
                           self.e_base[idx], d[idx]) if len(idx) else None)
        return [g for g in groups if g is not None], steps, int(d.max()) + 1 if m else 1

    def _group(self, idx):
        return (self.e_out[idx], self.e_in[idx].astype(np.intp), self.e_base[idx])

    # -- simulation -------------------------------------------------------------------
    def _eval(self, v, idx):
        return self._eval_group(v, self._group(idx)[1:])

    def _eval_group(self, v, group):
        ins, base = group
        return self._lookup_bits(v[ins], base)

    def _lookup_bits(self, bits, base):
        code = np.packbits(bits, axis=1, bitorder="little")
        if code.shape[1] == 1:
            return self.tt[base + code[:, 0]]
        return self.tt[base + code[:, 0] + (code[:, 1].astype(np.int64) << 8)]

    def _settle(self, v):
        for outs, ins, base in self._level_groups:
            v[outs] = self._eval_group(v, (ins, base))

    def _next_state(self, v, state):
        nxt = v[self.f_d].copy()
        for i, f, conn in self._clear:
            if f(**{p: v[n] for p, n in conn.items()}):
                nxt[i] = 0
        for i, f, conn in self._preset:
            if f(**{p: v[n] for p, n in conn.items()}):
                nxt[i] = 1
        return nxt

    def _apply(self, v, stim, t, state):
        for nets, bits in stim:
            v[nets] = bits[t]
        if len(self.f_q):
            ok = self.f_q >= 0
            v[self.f_q[ok]] = state[ok]
            okn = self.f_qn >= 0
            v[self.f_qn[okn]] = 1 - state[okn]

    def stimulus(self, ports, cycles):
        """``[(nets, uint8 bits [T, width])]`` from ``ports`` ({input port: ints [T]
        or uint8 bits [T, width]}); unnamed inputs (but the clock) stay 0."""
        out = []
        for name, val in ports.items():
            if name not in self.inputs:
                raise ValueError(f"no input port {name!r}; inputs: "
                                 f"{', '.join(sorted(self.inputs))}")
            nets = np.array(self.inputs[name], np.int64)
            arr = np.asarray(val)
            if arr.ndim == 1:
                if len(nets) > 63:
                    raise ValueError(f"port {name}: {len(nets)} bits need a bit array")
                arr = ((arr.astype(np.int64)[:, None] >> np.arange(len(nets))) & 1)
            if arr.shape != (cycles, len(nets)):
                raise ValueError(f"port {name}: expected {cycles} cycles x {len(nets)} "
                                 f"bits, got shape {arr.shape}")
            out.append((nets, arr.astype(np.uint8)))
        return out

    def run(self, ports, cycles, *, glitch=False, warmup=0, weights=None, clock_enable=None,
            delays=None, trace=None, progress=None):
        """Simulate ``cycles`` cycles of ``ports`` (see :meth:`stimulus`) from the all-zero
        state and return an :class:`Activity` of the cycles from ``warmup`` on.

        ``weights``: a dict: ``"rise"``, ``"fall"`` (fJ per rise / fall of each net in
        each group, float [nets, groups]), ``"clock"``
        (fJ per clocked cycle of each flop in each ``(D, Q)`` state, [flops, 4]) and
        ``"flop_group"`` (and, with clock gates, ``"gate"``: fJ per cycle of each gate
        closed and open, [gates, 2], in group ``"gate_group"``): the per-cycle energy by
        group is summed into
        ``Activity.per_cycle`` (leakage excluded). ``clock_enable``: ``(block, enable)``
        -- a block index per flop and ``bool [cycles, blocks]``: a flop whose block is
        disabled in a cycle is not clocked (it keeps its state and its clock pin burns
        nothing), as behind an ideal clock gate. ``delays``: a transport delay per
        evaluator in integer steps (e.g. its Liberty delay at its load in 5 ps steps):
        a timed glitch-aware run instead of unit delays (see :meth:`timed_windows`).
        ``trace``: a list that receives, per cycle,
        the settled values of every output port as ints (for tests). ``progress``:
        called with (cycle, cycles) every 1,000 cycles."""
        if cycles <= warmup:
            raise ValueError(f"{cycles} cycles leave nothing after {warmup} warm-up cycles")
        stim = self.stimulus(ports, cycles)
        start, cpu = time.monotonic(), time.process_time()
        v = np.zeros(self.n, np.uint8)
        v[1] = 1
        state = np.zeros(len(self.f_d), np.uint8)
        self._apply(v, [], 0, state)
        if len(self._const_only):
            v[self.e_out[self._const_only]] = self._eval(v, self._const_only)
        self._settle(v)
        rise = np.zeros(self.n, np.int64)
        fall = np.zeros(self.n, np.int64)
        cstates = np.zeros((len(self.f_d), 4), np.int64)
        flop_rows = np.arange(len(self.f_d))
        per_cycle = None
        if weights is not None:
            wr = np.asarray(weights["rise"], float)
            wf = np.asarray(weights["fall"], float)
            ngroups = wr.shape[1]
            ck_w = np.asarray(weights["clock"], float).reshape(len(self.f_d), 4)
            ck_g = np.asarray(weights["flop_group"], np.int64)
            per_cycle = np.zeros((cycles - warmup, ngroups))
            gate_w = np.asarray(weights.get("gate", np.zeros((len(self.gates), 2))), float)
            gate_g = int(weights.get("gate_group", 0))
            gate_closed = gate_w[:, 0].sum()             # every gate, every cycle
            gate_extra = gate_w[:, 1] - gate_w[:, 0]     # an open gate's output
        enabled = np.ones(len(self.f_d), bool)
        if clock_enable is not None:
            block, enable = clock_enable
            block = np.asarray(block, np.int64)
            enable = np.asarray(enable, bool)
            if block.shape != (len(self.f_d),) or enable.ndim != 2 or enable.shape[0] != cycles:
                raise ValueError(f"clock_enable: expected a block per flop ({len(self.f_d)}) "
                                 f"and enables [{cycles}, blocks], got {block.shape} and "
                                 f"{enable.shape}")
        out_nets = {p: np.array(n, np.int64) for p, n in self.outputs.items()}
        gates_open = np.zeros(len(self.gates), np.int64)
        if delays is not None:
            timed, _, R = self.timed_windows(delays)
            ring = np.zeros((R, self.n), np.uint8)
            glitch = True
        for t in range(cycles):
            prev = v.copy()
            self._apply(v, stim, t, state)
            if delays is not None:
                # ring[s % R] holds the values at step s; steps before 0 are ``prev``
                ring[:] = prev
                ring[0] = v
                cr = (v & ~prev & 1).astype(np.int64)
                cf = (prev & ~v & 1).astype(np.int64)
                last = 0
                for s, outs, ins, base, d in timed:
                    for u in range(last + 1, s + 1):
                        ring[u % R] = ring[(u - 1) % R]
                    last = s
                    new = self._lookup_bits(ring[((s - d) % R)[:, None], ins], base)
                    row = ring[s % R]
                    old = row[outs]
                    ch = new ^ old
                    if ch.any():
                        cr[outs] += new & ch
                        cf[outs] += old & ch
                        row[outs] = new
                v[:] = ring[last % R]
            elif glitch:
                cr = (v & ~prev & 1).astype(np.int64)
                cf = (prev & ~v & 1).astype(np.int64)
                for outs, ins, base in self._window_groups:
                    new = self._eval_group(v, (ins, base))
                    old = v[outs]
                    ch = new ^ old
                    if ch.any():
                        cr[outs] += new & ch
                        cf[outs] += old & ch
                        v[outs] = new
            else:
                self._settle(v)
                cr = (v & (1 - prev)).astype(np.int64)
                cf = (prev & (1 - v)).astype(np.int64)
            if clock_enable is not None:
                enabled = enable[t, block]           # a new array each cycle
            if len(self.gates):
                open_ = v[self.gate_enable]          # each gate's enable before the edge
                on = open_[self.f_gate[self._gated]] == 1
                if clock_enable is None:
                    enabled[self._gated] = on
                else:
                    enabled[self._gated] &= on
            if t >= warmup:
                rise += cr
                fall += cf
                code = v[self.f_d].astype(np.int64) + 2 * state
                if per_cycle is not None:
                    per_cycle[t - warmup] = cr @ wr + cf @ wf
                    if len(state):
                        per_cycle[t - warmup] += np.bincount(
                            ck_g, ck_w[flop_rows, code] * enabled, minlength=ngroups)
                    if len(self.gates):
                        per_cycle[t - warmup, gate_g] += gate_closed + gate_extra @ open_
                if len(self.gates):
                    gates_open += open_
                if len(state):
                    cstates[flop_rows[enabled], code[enabled]] += 1
            if trace is not None:
                trace.append({p: int(sum(int(b) << i for i, b in enumerate(v[n])))
                              for p, n in out_nets.items()})
            state = np.where(enabled, self._next_state(v, state), state).astype(np.uint8)
            if progress is not None and (t + 1) % 1000 == 0:
                progress(t + 1, cycles)
        act = Activity(rise, fall, cycles - warmup, cstates, per_cycle,
                       round(time.monotonic() - start, 3), glitch,
                       round(time.process_time() - cpu, 3), gates_open)
        if delays is not None:
            act.timing = "liberty"
        return act
