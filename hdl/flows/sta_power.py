"""OpenSTA (``sta``, Debian package ``opensta``; found and run as in :mod:`hdl.flows.opensta`,
which cross-checks timing) as a second, independent path for the
switching energy of a mapped netlist (:mod:`hdl.flows.energy`).

OpenSTA cannot be given the measured per-net activities here: Debian's 2019 snapshot
fails on ``set_power_activity -pins`` (a Tcl error) and propagates its own probabilistic
activities. So it is run once with every net at activity 1 (``set_power_activity -global
-activity 1``: one transition per clock period) and ``report_power -instances``: an
instance's switching power is then ``1/2 C V^2 f`` summed over its output nets, i.e.
its energy per output toggle. :func:`switching_cross_check` multiplies that by the
toggles this project's simulator counted on the same nets and compares the sum with the
project's own switching energy. Both use the same wire-load model (set explicitly) and
the same netlist (the ``netlist.v`` written beside the JSON by
:func:`hdl.flows.activity.mapped_netlist`).

What does not agree, and why: internal power. The 2019 snapshot adds the rise and the
fall energy of an arc for every toggle (fixed upstream in 2020), so its internal power
comes out about 2x high, and it weights ``when`` states by propagated probabilities;
leakage it weights by state probabilities, the project uses ``cell_leakage_power``.
Those numbers are reported beside the switching check for information only.
"""
import re
import time
from pathlib import Path

import numpy as np

from ..cache import Cache, resolve_cache
from .liberty import _file_sha
from .opensta import StaError, require_sta, run_sta

__all__ = ["opensta_power", "switching_cross_check", "power_script"]

_FORMAT = 1


def power_script(top, *, period_ns, wire_load):
    """The Tcl script: read, link, an ideal clock, every net at activity 1, per-instance
    power with six digits."""
    lines = ["read_liberty cells.lib", "read_verilog netlist.v", f"link_design {top}",
             f"create_clock -name clk -period {period_ns} [get_ports clk]",
             "set_input_delay 0 -clock clk [delete_from_list [all_inputs] "
             "[get_ports clk]]"]
    if wire_load:
        lines.append(f"set_wire_load_model -name {wire_load}")
    lines += ["set_power_activity -global -activity 1.0 -duty 0.5",
              "set_power_activity -input -activity 1.0 -duty 0.5",
              "report_power -instances [get_cells *] -digits 6"]
    return "\n".join(lines) + "\n"


_ROW = re.compile(r"^\s*([-\d.e+]+)\s+([-\d.e+]+)\s+([-\d.e+]+)\s+([-\d.e+]+)\s+(\S+)\s*$")


def opensta_power(netlist_verilog, top, liberty, *, period_ns=1.0, wire_load=None,
                  cache=True, timeout=600):
    """``{instance: (internal, switching, leakage)}`` in watts from OpenSTA at activity 1
    (:func:`power_script`), remembered in ``cache`` (kind ``energy/opensta``). Raises
    :class:`StaError` if ``sta`` is missing or fails."""
    require_sta()
    tcl = power_script(top, period_ns=period_ns, wire_load=wire_load)
    key = Cache.key(format=_FORMAT, netlist=netlist_verilog, tcl=tcl,
                    lib=_file_sha(liberty))
    store = resolve_cache(cache)
    hit = store.load_json("energy/opensta", key) if store else None
    if hit is not None:
        return {k: tuple(v) for k, v in hit["instances"].items()}
    start = time.monotonic()
    out = run_sta({"cells.lib": Path(liberty).read_text(errors="replace"),
                   "netlist.v": netlist_verilog, "power.tcl": tcl}, "power.tcl",
                  timeout=timeout)
    inst = {}
    for line in out.splitlines():
        m = _ROW.match(line)
        if m:
            inst[m.group(5)] = tuple(float(m.group(i)) for i in (1, 2, 3))
    if not inst:
        raise StaError("OpenSTA printed no per-instance power")
    if store:
        store.store_json("energy/opensta", key, {
            "instances": inst, "seconds": round(time.monotonic() - start, 3)})
    return inst


def switching_cross_check(sim, act, model, sta_power, *, period_ns):
    """Switching energy (pJ) of a capture ``act`` two ways: this project's (``model``,
    :class:`hdl.flows.energy.EnergyModel`) and OpenSTA's per-toggle energies
    (``sta_power`` from :func:`opensta_power`, activity 1 at ``period_ns``) times the
    same toggles. Nets driven by cells only (input ports and the clock have no driving
    instance in OpenSTA). For a cell with two outputs (FA, HA) OpenSTA's instance energy
    is split between them in proportion to the project's per-output energies. Returns
    ``{"project_pj", "opensta_pj", "ratio", "instances", "missing", "internal_ratio"}``
    (``internal_ratio``: OpenSTA's internal power at activity 1 over the project's
    internal energy per toggle at the same activity, combinational cells only: for
    information, see the module docstring)."""
    toggles = act.rise + act.fall
    outs = {}
    for net, (cell, pin) in sim.drivers.items():
        outs.setdefault(cell, []).append(net)
    ours = theirs = 0.0
    int_ours = int_theirs = 0.0
    missing = []
    flops = {f["cell"] for f in sim.flops}
    for cell, nets in outs.items():
        p = sta_power.get(cell)
        if p is None:
            missing.append(cell)
            continue
        e_sta = p[1] * period_ns * 1e-9 * 1e15          # W x s -> fJ per toggle
        mine = np.array([model.switch[n] for n in nets])
        share = mine / mine.sum() if mine.sum() > 0 else np.full(len(nets), 1 / len(nets))
        t = np.array([toggles[n] for n in nets], float)
        ours += float(mine @ t)
        theirs += float(e_sta * (share @ t))
        if cell not in flops:
            int_theirs += p[0] * period_ns * 1e-9 * 1e15
            int_ours += float(sum((model.rise[n].sum() + model.fall[n].sum()) / 2
                                  - model.switch[n] for n in nets))
    return {"project_pj": ours / 1000, "opensta_pj": theirs / 1000,
            "ratio": theirs / ours if ours else float("nan"),
            "instances": len(outs) - len(missing), "missing": len(missing),
            "internal_ratio": int_theirs / int_ours if int_ours else float("nan")}
