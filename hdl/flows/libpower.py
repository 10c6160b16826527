"""What the energy flow reads from a Liberty file beyond :func:`hdl.flows.liberty.parse_liberty`:
cell functions (for simulation), flops, pin capacitances, ``internal_power`` tables,
leakage, wire-load models, the nominal voltage and the units.

Units are checked, not assumed: capacitance must be in fF or pF (``capacitive_load_unit``),
time in ns or ps, leakage in nW/uW/pW/mW, voltage in V; anything else is a
:class:`~hdl.flows.liberty.LibertyError` (one line). Internal-power tables hold energy per
transition in ``capacitive_load_unit x voltage_unit**2`` (fF x V^2 = fJ for Nangate45).
"""
import re
from functools import lru_cache
from pathlib import Path

from .liberty import LibertyError, _floats, _parse_groups, _table, _tokens, liberty_version

__all__ = ["LibraryPower", "library_power", "bool_function", "wire_cap"]

_CAP_FF = {"ff": 1.0, "pf": 1000.0}
_TIME_NS = {"1ns": 1.0, "1ps": 1e-3, "10ps": 1e-2, "100ps": 1e-1}
_LEAK_NW = {"1nw": 1.0, "1uw": 1e3, "1pw": 1e-3, "1mw": 1e6, "10nw": 10.0, "100nw": 100.0}


_BOOL_TOKEN = re.compile(r"\s*([A-Za-z_][A-Za-z_0-9]*|[01]|[!'&*|+^()])")


def bool_function(expr, pins):
    """A Liberty boolean expression (``!A``, ``A'``, ``&``/``*``/juxtaposition for AND,
    ``|``/``+`` for OR, ``^``, parentheses, constants 0/1) as a Python function of the
    keyword arguments ``pins`` (ints 0/1 or numpy uint8 arrays of 0/1), returning 0/1
    values of the same kind. Precedence: ``!``/``'`` > AND > XOR > OR."""
    toks, pos = [], 0
    text = expr.strip()
    while pos < len(text):
        m = _BOOL_TOKEN.match(text, pos)
        if not m:
            raise LibertyError(f"cannot read Liberty function {expr!r}")
        toks.append(m.group(1))
        pos = m.end()
        while pos < len(text) and text[pos] == " ":
            pos += 1
    i = 0

    def peek():
        return toks[i] if i < len(toks) else None

    def take():
        nonlocal i
        i += 1
        return toks[i - 1]

    def atom():
        t = take() if peek() is not None else None
        if t == "!":
            return f"(1 ^ {atom()})"
        if t == "(":
            e = or_()
            if take() != ")":
                raise LibertyError(f"unbalanced parentheses in {expr!r}")
        elif t in ("0", "1"):
            e = t
        elif t and re.match(r"[A-Za-z_]", t):
            if t not in pins:
                raise LibertyError(f"function {expr!r} names unknown pin {t!r}")
            e = f"v[{t!r}]"
        else:
            raise LibertyError(f"cannot read Liberty function {expr!r}")
        while peek() == "'":
            take()
            e = f"(1 ^ {e})"
        return e

    def and_():
        e = atom()
        while peek() is not None and peek() not in ("|", "+", "^", ")"):
            if peek() in ("&", "*"):
                take()
            e = f"({e} & {atom()})"
        return e

    def xor_():
        e = and_()
        while peek() == "^":
            take()
            e = f"({e} ^ {and_()})"
        return e

    def or_():
        e = xor_()
        while peek() in ("|", "+"):
            take()
            e = f"({e} | {xor_()})"
        return e

    if not toks:
        raise LibertyError("empty Liberty function")
    code = or_()
    if i != len(toks):
        raise LibertyError(f"cannot read Liberty function {expr!r}")
    compiled = compile(code, "<liberty function>", "eval")
    return lambda **v: eval(compiled, {"__builtins__": {}}, {"v": v})


def _unit(value, table, what, lib):
    key = value.replace(" ", "").lower()
    if key not in table:
        raise LibertyError(f"{lib}: unsupported {what} {value!r}; allowed: "
                           f"{', '.join(sorted(table))}")
    return table[key]


class LibraryPower:
    """The power view of one Liberty file (see the module docstring). Energies in fJ,
    capacitances in fF, times in ns, leakage in nW, voltage in V."""

    def __init__(self, path):
        path = Path(path)
        text = path.read_text(errors="replace")
        name = path.name
        _, _, attrs, groups = _parse_groups(_tokens(text), name)
        cap_attr = attrs.get("capacitive_load_unit", ["1", "ff"])
        if isinstance(cap_attr, str):
            cap_attr = cap_attr.replace(",", " ").split()
        try:
            cap_mult = float(cap_attr[0])
        except (ValueError, IndexError):
            raise LibertyError(f"{name}: bad capacitive_load_unit {cap_attr!r}") from None
        self.cap_ff = cap_mult * _unit(cap_attr[1], _CAP_FF, "capacitive_load_unit", name)
        self.time_ns = _unit(attrs.get("time_unit", "1ns"), _TIME_NS, "time_unit", name)
        self.leak_nw = _unit(attrs.get("leakage_power_unit", "1nW"), _LEAK_NW,
                             "leakage_power_unit", name)
        if attrs.get("voltage_unit", "1V").replace(" ", "").lower() != "1v":
            raise LibertyError(f"{name}: unsupported voltage_unit "
                               f"{attrs.get('voltage_unit')!r}; allowed: 1V")
        try:
            self.voltage = float(attrs["nom_voltage"])
        except (KeyError, ValueError):
            raise LibertyError(f"{name}: no nom_voltage") from None
        self.name = name
        templates = {}
        self.wire_loads = {}
        for g in groups:
            if g[0] in ("lu_table_template", "power_lut_template") and g[1]:
                t = {k: g[2][k] for k in ("variable_1", "variable_2") if k in g[2]}
                for k in ("index_1", "index_2"):
                    if k in g[2]:
                        t[k] = _floats(g[2][k])
                templates[g[1][0]] = t
            elif g[0] == "wire_load" and g[1]:
                self.wire_loads[g[1][0]] = self._wire_load(g, name)
        self.default_wire_load = attrs.get("default_wire_load", "") or None
        if self.default_wire_load and self.default_wire_load not in self.wire_loads:
            raise LibertyError(f"{name}: default_wire_load {self.default_wire_load!r} "
                               "is not defined")
        self.cells = {}
        for g in groups:
            if g[0] == "cell" and g[1]:
                self.cells[g[1][0]] = self._cell(g, templates)

    def _wire_load(self, g, name):
        a = g[2]
        try:
            cap, slope = float(a["capacitance"]), float(a.get("slope", 0.0))
        except (KeyError, ValueError):
            raise LibertyError(f"{name}: wire_load {g[1][0]} lacks capacitance") from None
        # ``fanout_length(n, len)`` repeats and the group parser keeps only the first
        # of a repeated attribute: the table is read from the raw text (:func:`_load`).
        return {"cap_per_length": cap * self.cap_ff, "slope": slope, "fanout_length": []}

    def _cell(self, g, templates):
        _, args, attrs, sub = g
        cell = {"area": float(attrs.get("area", 0.0) or 0.0),
                "leakage_nw": float(attrs.get("cell_leakage_power", 0.0) or 0.0)
                * self.leak_nw, "pins": {}, "ff": None, "statetable": False}
        for s in sub:
            if s[0] == "ff":
                cell["ff"] = {"state": s[1][0] if s[1] else "IQ",
                              "state_n": s[1][1] if len(s[1]) > 1 else "IQN",
                              **{k: s[2][k] for k in ("next_state", "clocked_on", "clear",
                                                     "preset") if k in s[2]}}
            elif s[0] in ("latch", "statetable"):
                cell["statetable"] = True
        for p in sub:
            if p[0] != "pin" or not p[1]:
                continue
            pa = p[2]
            power = []
            for ip in p[3]:
                if ip[0] != "internal_power":
                    continue
                arc = {"related": ip[2].get("related_pin", ""), "when": ip[2].get("when", "")}
                for tab in ip[3]:
                    if tab[0] in ("rise_power", "fall_power"):
                        tb = _table(tab, templates)
                        if tb:
                            arc[tab[0]] = tb
                power.append(arc)
            try:
                cap = float(pa.get("capacitance", 0.0)) * self.cap_ff
            except ValueError:
                cap = 0.0
            cell["pins"][p[1][0]] = {"dir": pa.get("direction", ""), "cap": cap,
                                     "function": pa.get("function", ""),
                                     "power": power, "clock": pa.get("clock", "") == "true",
                                     "gate_role": next((r for r in ("clock", "enable", "out")
                                                        if pa.get(f"clock_gate_{r}_pin", "")
                                                        == "true"), "")}
        cell["icg"] = {pin["gate_role"]: name for name, pin in cell["pins"].items()
                       if pin["gate_role"]} if cell["statetable"] else {}
        if cell["icg"] and set(cell["icg"]) != {"clock", "enable", "out"}:
            cell["icg"] = {}
        return cell


def wire_cap(model, fanout):
    """Wire capacitance (fF) of a net with ``fanout`` loads under a Liberty wire-load
    ``model`` (:attr:`LibraryPower.wire_loads` entry): the length of the
    ``fanout_length`` table (linear between entries; beyond the last one, extended by
    ``slope`` per extra fanout, as OpenSTA and Design Compiler do) times the capacitance
    per unit length. Zero loads: zero."""
    if model is None or fanout <= 0:
        return 0.0
    pts = model["fanout_length"]
    if not pts:
        return 0.0
    if fanout >= pts[-1][0]:
        length = pts[-1][1] + (fanout - pts[-1][0]) * model["slope"]
    elif fanout <= pts[0][0]:
        length = pts[0][1] * fanout / pts[0][0] if fanout < pts[0][0] else pts[0][1]
    else:
        for (f0, l0), (f1, l1) in zip(pts, pts[1:]):
            if f0 <= fanout <= f1:
                length = l0 + (l1 - l0) * (fanout - f0) / (f1 - f0)
                break
    return length * model["cap_per_length"]


_FANOUT = re.compile(r"fanout_length\s*\(\s*([\d.eE+-]+)\s*,\s*([\d.eE+-]+)\s*\)")
_WIRE_LOAD = re.compile(r'wire_load\s*\(\s*"?([^")]+)"?\s*\)\s*\{(.*?)\}', re.S)


@lru_cache(maxsize=4)
def _load(path, mtime, size):
    text = Path(path).read_text(errors="replace")
    lib = LibraryPower(path)
    for m in _WIRE_LOAD.finditer(text):
        if m.group(1) in lib.wire_loads:
            lib.wire_loads[m.group(1)]["fanout_length"] = sorted(
                (float(a), float(b)) for a, b in _FANOUT.findall(m.group(2)))
    return lib


def library_power(path):
    """The :class:`LibraryPower` of the Liberty file ``path`` (cached per file version).
    Raises :class:`~hdl.flows.liberty.LibertyError` (one line) if it is unreadable or its
    units are unsupported."""
    return _load(*liberty_version(path))
