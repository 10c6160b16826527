"""A design mapped to a Liberty library for the energy flow, as Yosys JSON and Verilog.

Mapping (one Yosys run, cached, kind ``energy/netlist``)::

    read_verilog design.v; hierarchy -top TOP
    synth -top TOP                           # per module (an array's PE is mapped once)
    dfflibmap -liberty LIB; abc -liberty LIB; opt_clean
    rename -enumerate                        # cell names _N_ inside each module
    flatten -noscopeinfo; opt_clean; rename -enumerate
    write_json netlist.json; write_verilog -noattr netlist.v   # same names in both

Cells of a submodule instance keep its hierarchical prefix (``row[0].col[1].u_pe._12_``);
cells of the top have none (the split array's muxes and port logic).
"""
import json
import time
from pathlib import Path

from ..cache import resolve_cache
from .liberty import (LibertyError, has_clock_gates, mapping_key, nangate45_liberty,
                      run_with_liberty, with_icg)
from .libpower import library_power
from .synth import YosysError, script

__all__ = ["mapped_netlist", "energy_script"]

_NETLIST_FORMAT = 1


def energy_script(top, flow="synth", *, icg=False):
    """The Yosys script of the module docstring; the library is ``cells.lib``. ``icg``:
    the design's clock gates (:mod:`hdl.clock_gate`) become the library's integrated
    clock-gating cell (:func:`hdl.flows.liberty.with_icg`)."""
    text = script(top, flow, ["dfflibmap -liberty cells.lib", "abc -liberty cells.lib",
                              "opt_clean", "rename -enumerate", "flatten -noscopeinfo",
                              "opt_clean", "rename -enumerate", "write_json netlist.json",
                              "write_verilog -noattr netlist.v"], flatten=False)
    return with_icg(text) if icg else text


def mapped_netlist(verilog, top, liberty_path=None, *, flow="synth", cache=True,
                   timeout=None):
    """``verilog`` mapped to the cells of ``liberty_path`` (default Nangate45) and
    flattened: ``{"netlist": Yosys JSON, "verilog": the same netlist as Verilog, "top",
    "liberty": path, "seconds", "cached"}``. Remembered in ``cache`` (kind
    ``energy/netlist``). Raises :class:`LibertyError` if the library cannot map it."""
    liberty_path = Path(liberty_path) if liberty_path else nangate45_liberty(cache)
    library_power(liberty_path)                      # unit errors before Yosys runs
    text = energy_script(top, flow, icg=has_clock_gates(verilog))
    key = mapping_key(_NETLIST_FORMAT, verilog, top, text, liberty_path)
    store = resolve_cache(cache)
    hit = store.load_json("energy/netlist", key) if store else None
    if hit is not None:
        return {**hit, "liberty": str(liberty_path), "cached": True}
    start = time.monotonic()
    (netlist, text_v), _ = run_with_liberty(text, verilog, liberty_path,
                                            ("netlist.json", "netlist.v"), timeout=timeout)
    out = {"netlist": json.loads(netlist), "verilog": text_v, "top": top,
           "seconds": round(time.monotonic() - start, 3)}
    lib = library_power(liberty_path)
    mod = out["netlist"]["modules"].get(top)
    if mod is None:
        raise YosysError(f"mapped netlist has no module {top}")
    unknown = sorted({c["type"] for c in mod["cells"].values()} - set(lib.cells))
    if unknown:
        raise LibertyError(f"{liberty_path.name} cannot map {top}: cells not in the "
                           f"library: {', '.join(unknown)}")
    if store:
        store.store_json("energy/netlist", key, out)
    return {**out, "liberty": str(liberty_path), "cached": False}
