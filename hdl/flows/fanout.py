"""Buffer trees on the high-fanout nets of a mapped netlist (the Liberty flow's last step).

ABC maps for area and leaves fanout alone: in an array, the one inverter of the
synchronous reset drives the reset gate of every flop (1,328 cell inputs, 1.8 pF in the
8x8 WS array), and that single ``INV_X1`` alone takes 4.3 ns, four times the PE's own
critical path. Any real flow buffers such a net (synthesis with a max-fanout limit, or
the placer's repair step); :func:`buffer_tree` does the same, deterministically:

* every net **driven by a cell** with more than ``max_fanout`` cell inputs gets a tree of
  ``cell`` buffers (Nangate45 ``BUF_X4``): its loads, in a fixed order (cell name, pin),
  are cut into groups of at most ``max_fanout``, each driven by one new buffer, and the
  new buffers' inputs become the net's loads, again cut into groups while there are more
  than ``max_fanout`` of them;
* nets driven by input ports are left alone (the timing model drives them ideally), and
  so are nets that only drive clock pins (a clock gate's output): clocks are ideal, a
  clock tree is out of scope, for the gated clocks as for ``clk``;
* with no net above the limit the netlist is returned unchanged: the MACs and PEs alone
  (largest cell-driven fanout 31, the behavioural MAC's product AND gate; 22 in the WS PE)
  keep their area and delay.

The limit, 32 loads of about 1.5 fF (~50 fF), keeps a Nangate45 ``INV_X1`` under about
0.3 ns; a ``BUF_X4`` driving 32 loads adds about 60 ps per tree level. Same input, same output: the
new cells and nets are numbered in that fixed order.
"""
import copy

__all__ = ["buffer_tree", "MAX_FANOUT", "BUFFER_CELL"]

#: Cell inputs a net may drive before it gets a buffer tree.
MAX_FANOUT = 32
#: The buffer of the tree (its single input and output pins are read from the library).
BUFFER_CELL = "BUF_X4"


def _pins(lib_cell):
    ins = [p for p, d in lib_cell["pins"].items() if d["dir"] == "input"]
    outs = [p for p, d in lib_cell["pins"].items() if d["dir"] == "output"]
    return (ins[0], outs[0]) if len(ins) == 1 and len(outs) == 1 else None


def buffer_tree(netlist, top, lib, *, max_fanout=MAX_FANOUT, cell=BUFFER_CELL):
    """``(netlist, added)``: a copy of ``netlist`` (Yosys ``write_json``, module ``top``
    of ``lib`` cells) with buffer trees on its cell-driven nets of more than
    ``max_fanout`` loads (see the module docstring), and the number of buffers added.
    A library without ``cell`` (or with a ``cell`` that is not a one-input buffer)
    leaves the netlist unchanged."""
    if max_fanout < 2:
        raise ValueError(f"max_fanout={max_fanout}; allowed: 2 or more")
    pins = _pins(lib["cells"][cell]) if cell in lib["cells"] else None
    mod = netlist["modules"][top]
    if pins is None:
        return netlist, 0
    cells = lib["cells"]
    loads, driven = {}, set()
    for cname in sorted(mod["cells"]):
        c = mod["cells"][cname]
        lc = cells.get(c["type"])
        if lc is None:
            continue
        for pin in sorted(c["connections"]):
            d = lc["pins"].get(pin, {}).get("dir", "")
            for i, b in enumerate(c["connections"][pin]):
                if isinstance(b, str):
                    continue
                if d == "output":
                    driven.add(b)
                elif d == "input":
                    loads.setdefault(b, []).append((cname, pin, i))
    clock_pins = {(t, p) for t, c in cells.items() for p, d in c["pins"].items()
                  if d.get("clock")}
    heavy = sorted(b for b in driven if len(loads.get(b, ())) > max_fanout and not all(
        (mod["cells"][cn]["type"], pin) in clock_pins for cn, pin, _ in loads[b]))
    if not heavy:
        return netlist, 0
    out = copy.deepcopy(netlist)
    mod = out["modules"][top]
    next_bit = 1 + max(b for c in mod["cells"].values() for bits in c["connections"].values()
                       for b in bits if not isinstance(b, str))
    next_bit = max([next_bit] + [b + 1 for p in mod["ports"].values() for b in p["bits"]
                                 if not isinstance(b, str)])
    pin_in, pin_out = pins
    added = 0
    for net in heavy:
        level = loads[net]
        while len(level) > max_fanout:
            upper = []
            for g in range(0, len(level), max_fanout):
                name = f"$fanout${net}${added}"
                bit = next_bit
                next_bit += 1
                for cname, pin, i in level[g:g + max_fanout]:
                    mod["cells"][cname]["connections"][pin][i] = bit
                mod["cells"][name] = {"type": cell, "connections": {pin_in: [net],
                                                                    pin_out: [bit]}}
                upper.append((name, pin_in, 0))
                added += 1
            level = upper
    return out, added
