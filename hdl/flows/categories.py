"""Energy categories of a mapped netlist's cells (see :mod:`hdl.flows.energy`), and
blocks of flops for clock gating."""
import re

import numpy as np

from .activity import GateSim

__all__ = ["ENERGY_CATEGORIES", "classify_cells", "flop_blocks", "pe_position"]

#: Report order of the energy categories.
ENERGY_CATEGORIES = ("arithmetic", "accumulator", "pipeline", "data_movement", "drain",
                     "ports", "clock", "leakage", "other")
_CAT = {c: i for i, c in enumerate(ENERGY_CATEGORIES)}
_FLOP_RULES = [
    ("ports", re.compile(r"split|cfg|config|mode|(^|_)sel|(^|_)cut($|_)", re.I)),
    ("pipeline", re.compile(r"^pipe|_d\d+$")),
    ("accumulator", re.compile(r"^(acc|total)$")),
    ("drain", re.compile(r"^(psum_out|pv_out|d_out|dv_out|drain_r|drain_out)$")),
    ("data_movement", re.compile(r"^(a|b|w)_out$|^wact$|^wsh|^(sw|v|last|flag|drain)_out$|"
                                 r"^(a|b)_r$")),
]
_MAC_RESULT = re.compile(r"^psum_out$")


def _prefix(cell):
    return cell.rsplit(".", 1)[0] if "." in cell else ""


def _leaf(name, prefix):
    if prefix and name.startswith(prefix + "."):
        name = name[len(prefix) + 1:]
    return re.sub(r"\[\d+\]$", "", name.lstrip("\\"))


def classify_cells(sim: GateSim):
    """``(cell -> category, flop index -> category)`` of :data:`ENERGY_CATEGORIES` (see
    the module docstring)."""
    flop_cat, flop_leaf, by_cell = [], {}, {}
    for i, f in enumerate(sim.flops):
        prefix = _prefix(f["cell"])
        names = sim.aliases.get(f["q"], []) or [sim.nets[f["q"]]]
        own = [n for n in names if prefix and n.startswith(prefix + ".")] or names
        leaf = _leaf(own[0], prefix)
        cat = next((c for c, rule in _FLOP_RULES if rule.search(leaf)), "other")
        flop_cat.append(cat)
        flop_leaf[f["cell"]] = leaf
        by_cell[f["cell"]] = cat
    hierarchical = any("." in c for c in sim.cells)
    # Logic: the flop categories each evaluator's output reaches, in reverse topo order.
    ev_of_net = {int(n): i for i, n in enumerate(sim.e_out)}
    reach = [set() for _ in sim.e_out]
    order = [i for lvl in sim.levels for i in lvl][::-1]
    flop_of_d = {}
    for f in sim.flops:
        flop_of_d.setdefault(f["d"], []).append(f["cell"])
    for i in order:
        net = int(sim.e_out[i])
        r = reach[i]
        for cell, pin in sim.loads.get(net, ()):
            if cell in by_cell:
                leaf = flop_leaf[cell]
                r.add("result" if _MAC_RESULT.search(leaf) else by_cell[cell])
            else:
                for p, n in sim.conn[cell].items():
                    j = ev_of_net.get(n)
                    if j is not None and sim.e_cell[j] == cell and j != i:
                        r |= reach[j]
    prio = ("arithmetic", "drain", "data_movement", "ports", "other")
    for i, cell in enumerate(sim.e_cell):
        r = reach[i]
        if hierarchical and "." not in cell:
            cat = "ports"
        elif r & {"accumulator", "pipeline", "result"}:
            cat = "arithmetic"
        else:
            cat = next((c for c in ("drain", "data_movement", "ports") if c in r), "other")
        old = by_cell.get(cell)                  # FA/HA: two outputs, the first in prio
        if old is None or prio.index(cat) < prio.index(old):
            by_cell[cell] = cat
    # clock gates and the logic that only computes their enables: the clock's
    enables = set(int(n) for n in getattr(sim, "gate_enable", ()))
    to_gate = [False] * len(sim.e_out)
    for i in order:
        net = int(sim.e_out[i])
        to_gate[i] = net in enables or any(
            to_gate[j] for cell, pin in sim.loads.get(net, ()) if cell not in by_cell
            for n in sim.conn[cell].values() for j in [ev_of_net.get(n)]
            if j is not None and sim.e_cell[j] == cell and j != i)
    for i, cell in enumerate(sim.e_cell):
        if to_gate[i] and not reach[i]:
            by_cell[cell] = "clock"
    for cell, _, _ in getattr(sim, "gates", ()):
        by_cell[cell] = "clock"
    for cell in sim.cells:
        by_cell.setdefault(cell, "ports" if hierarchical and "." not in cell else "other")
    return by_cell, flop_cat


_PE_AT = re.compile(r"row\[(\d+)\]\.col\[(\d+)\]\.")


def pe_position(cell):
    """``(row, col)`` of the array PE a flattened cell belongs to (its name starts with
    ``row[i].col[j].``, as :func:`hdl.flows.gatemap.mapped_netlist` keeps it), or None."""
    m = _PE_AT.search(cell)
    return (int(m.group(1)), int(m.group(2))) if m else None


def flop_blocks(sim: GateSim, block_of):
    """``(block index per flop, [block keys])`` grouping the flops of ``sim`` by
    ``block_of(cell name)`` (any hashable; e.g. the tile of :func:`pe_position`): the
    first half of :func:`design_energy`'s ``clock_enable``."""
    keys, index = [], {}
    out = np.zeros(len(sim.flops), np.int64)
    for i, f in enumerate(sim.flops):
        k = block_of(f["cell"])
        if k not in index:
            index[k] = len(keys)
            keys.append(k)
        out[i] = index[k]
    return out, keys
