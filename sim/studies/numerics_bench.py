"""Numerics benchmark: what FP4 (E2M1) costs over int4, from the MAC to the 8x8 array.

``systolic bench --only numerics`` writes ``build/bench/numerics.json`` and
``numerics.md``:

* **every FP4 MAC architecture** (shift; decode to magnitude + array, Wallace, Dadda,
  Booth) x adder x fused at W = 16, P = 0, and the behavioural FP4 and int4 MACs through
  each Yosys flow: CMOS transistors and depth (the MAC bench's flow, :mod:`hdl.flows.synth`);
  the target: the best gate-level FP4 MAC at depth <= the behavioural one, against the
  best int4 MAC (1,272) and 0.90x the best behavioural FP4 flow;
* **int4 against FP4** for the default gate-level MAC of each format, as a MAC, as a PE
  of each dataflow (OS compact, WS with shadow weights) and as an 8x8 array of each
  dataflow (per PE): transistors, depth, Nangate45 um^2 and delay
  (:mod:`hdl.flows.liberty`), iCE40 LUT4s from ``synth_ice40`` and nextpnr's Fmax on the
  UP5K (:mod:`hdl.flows.fpga`) for the MAC and the PE (an 8x8 array does not fit the
  UP5K; its PEs talk through registers only, so the PE's Fmax is the array's);
* the answer: FP4's overhead over int4 at each level, set against the 50-180% that
  van Baalen et al. (2023) give for FP over INT in dedicated hardware;
* **the MX scale path**: the block-scale unit of one output lane
  (:class:`hdl.mx_scale.ScaleUnit`, W = 16; the normalized exact float and the cheaper
  exact (mantissa, exponent) pair), one per output lane of the FP4 8x8 arrays (OS: R + C
  - 1 anti-diagonal lanes, WS: C columns), against those arrays' own area.

Every tool result is cached (Yosys, Liberty, nextpnr), so a rerun takes seconds.
"""
import platform
import sys
import time
from contextlib import nullcontext

from hdl.array import ArrayConfig, array_verilog, pe_verilog
from hdl.emit import write_atomic
from hdl.flows.synth import FLOWS, synthesize_many, yosys_version
from hdl.mac import ADDER_CHOICES, MacConfig
from sim.studies.tables import markdown_table, write_json

__all__ = ["run_numerics_bench", "tool_calls", "mac_configs", "TARGET_RATIO", "INT4_BEST",
           "ARRAY_TARGET", "ARRAY_SIZE", "SCALE_UNITS"]

COMMAND = "systolic bench --only numerics"
TARGET_RATIO = 0.90            # best gate-level FP4 MAC against the best behavioural flow
INT4_BEST = 1272               # the best gate-level int4 MAC (dadda + kogge-stone, fused)
ARRAY_SIZE = 8
ARRAY_TARGET = 1.05            # FP4 8x8 OS array per PE against the int4 one
CLAIM = (0.50, 1.80)           # van Baalen et al. 2023: FP costs 50-180% more than INT
FP4_ARCHS = ("shift", "array", "wallace", "dadda", "booth")


def mac_configs():
    """The MAC sweep: every FP4 architecture x adder x fused, the behavioural FP4 and int4
    MACs, and the int4 default (W = 16, P = 0)."""
    configs = [MacConfig(numerics="fp4", multiplier=m, adder=a, fused=f)
               for m in FP4_ARCHS for a in ADDER_CHOICES for f in (True, False)]
    return configs + [MacConfig(numerics="fp4", multiplier="behavioral"), MacConfig(),
                      MacConfig(adder="kogge-stone"), MacConfig(multiplier="behavioral")]


def _flows(cfg):
    return list(FLOWS) if cfg.behavioral else ["synth"]


def _label(cfg):
    if cfg.behavioral:
        arch = "behavioural (decode, *, negate, +)" if cfg.numerics == "fp4" else \
            "behavioural (a*b, +)"
    elif cfg.multiplier == "shift":
        arch = f"shift (mantissa product, shift) + {cfg.adder}"
    else:
        arch = (f"decode + {cfg.multiplier} + {cfg.adder}" if cfg.numerics == "fp4" else
                f"{cfg.multiplier} + {cfg.adder}")
    return f"{cfg.numerics} {arch}, {'fused' if cfg.fused else 'unfused'}" if not \
        cfg.behavioral else f"{cfg.numerics} {arch}"


def _sweep(progress):
    configs = mac_configs()
    jobs, keys = [], []
    for cfg in configs:
        for flow in _flows(cfg):
            jobs.append({"verilog": cfg.verilog(), "top": "mac", "flow": flow})
            keys.append((cfg, flow))
    results = synthesize_many(jobs, progress=progress)
    rows = []
    for (cfg, flow), res in zip(keys, results):
        rows.append({"design": _label(cfg), "slug": cfg.slug, "numerics": cfg.numerics,
                     "flow": flow, "transistors": res.transistors, "depth": res.depth,
                     "cells": res.cells, "flops": res.flops,
                     "ice40_lut4": (res.ice40 or {}).get("lut4")})
    return rows


def _target(rows):
    fp4 = [r for r in rows if r["numerics"] == "fp4"]
    behav = min((r for r in fp4 if "behavioural" in r["design"]),
                key=lambda r: (r["transistors"], r["depth"]))
    gates = [r for r in fp4 if "behavioural" not in r["design"]]
    fits = [r for r in gates if r["depth"] <= behav["depth"]] or gates
    best = min(fits, key=lambda r: (r["transistors"], r["depth"]))
    ratio = best["transistors"] / behav["transistors"]
    int4 = min((r for r in rows if r["numerics"] == "int4" and "behavioural" not in
                r["design"]), key=lambda r: r["transistors"])
    return {"best": best, "behavioural": behav, "ratio": round(ratio, 4),
            "int4_best_measured": int4, "int4_best_reference": INT4_BEST,
            "met": ratio <= TARGET_RATIO and best["depth"] <= behav["depth"]
            and best["transistors"] <= INT4_BEST}


def _detail_designs():
    """(level, dataflow, numerics, label, verilog, top, divisor) for the int4/FP4 table."""
    out = []
    for numerics in ("int4", "fp4"):
        mac = MacConfig(numerics=numerics)
        out.append(("MAC", "-", numerics, mac.slug, mac.verilog(), "mac", 1))
        for df in ("os", "ws"):
            out.append(("PE", df, numerics, f"pe {df} {mac.slug}", pe_verilog(mac, df),
                        "pe", 1))
        for df in ("os", "ws"):
            n = ARRAY_SIZE
            out.append((f"{n}x{n} array, per PE", df, numerics, f"array {df} {n}x{n} "
                        f"{mac.slug}", array_verilog(n, n, df, mac), "systolic_array",
                        n * n))
    return out


def _liberty(verilog, top):
    from hdl.flows.liberty import liberty_area, LibertyError
    try:
        return liberty_area(verilog, top)
    except LibertyError as e:
        return {"error": str(e)}


def _fpga(verilog, top, big):
    """nextpnr on the UP5K for a MAC or a PE. An 8x8 array is not placed: it does not fit
    the UP5K (5,280 cells), and every PE output is a register, so no path is longer than
    the PE's own: the PE's Fmax stands for the array's."""
    from hdl.flows.fpga import FpgaFitError, NextpnrError, ice40_fmax
    from hdl.flows.synth import YosysError
    if big:
        return None, []
    try:
        return ice40_fmax(verilog, top, "up5k"), []
    except (FpgaFitError, NextpnrError, YosysError) as e:
        return None, [f"{top}: {str(e).splitlines()[0]}"]


def _detail(progress):
    designs = _detail_designs()
    synth = synthesize_many([{"verilog": v, "top": t, "flow": "synth"}
                             for *_, v, t, _ in designs], progress=progress)

    def tools(d):
        *_, verilog, top, divisor = d
        lib = _liberty(verilog, top)
        fpga, notes = _fpga(verilog, top, divisor > 1)
        if progress:
            progress(None)
        return lib, fpga, notes

    extra = [tools(d) for d in designs]
    rows = []
    for (level, df, numerics, label, _, top, n), res, (lib, fpga, notes) in zip(
            designs, synth, extra):
        rows.append({
            "level": level, "dataflow": df, "numerics": numerics, "design": label,
            "transistors": round(res.transistors / n, 1), "depth": res.depth,
            "flops": res.flops, "ice40_lut4": round((res.ice40 or {}).get("lut4", 0) / n, 1),
            "nangate45_um2": round(lib["area_um2"] / n, 2) if "area_um2" in lib else None,
            "nangate45_delay_ps": lib.get("delay_ps"),
            "fmax_mhz": fpga["fmax_mhz"] if fpga else None,
            "fpga_device": fpga["device"] if fpga else None,
            "fpga_note": "; ".join(notes) or None,
            "total_transistors": res.transistors})
    return rows


#: The scale units measured: (key, label, normalize).
SCALE_UNITS = (("float", "normalized float: sign, 16-bit significand, 10-bit exponent, NaN",
                True),
               ("pair", "exact pair: acc as mantissa, exponent xa + xb - 256, NaN", False))


def _scale_units(progress):
    """Each :data:`SCALE_UNITS` entry through the CMOS flow (with iCE40 counts) and
    Nangate45: ``{key: row}``."""
    from hdl.mx_scale import ScaleUnit
    units = [(key, label, ScaleUnit(acc_width=16, normalize=norm).verilog())
             for key, label, norm in SCALE_UNITS]
    synth = synthesize_many([{"verilog": v, "top": "mx_scale", "flow": "synth"}
                             for *_, v in units], progress=progress)
    out = {}
    for (key, label, verilog), res in zip(units, synth):
        lib = _liberty(verilog, "mx_scale")
        out[key] = {"unit": key, "design": label, "transistors": res.transistors,
                    "depth": res.depth, "ice40_lut4": (res.ice40 or {}).get("lut4"),
                    "nangate45_um2": lib.get("area_um2"),
                    "nangate45_delay_ps": lib.get("delay_ps")}
    return out


def _scale_path(units, detail):
    """The scale units per FP4 8x8 array: one per output lane
    (:attr:`hdl.array.ArrayConfig.out_lanes`), against the array's transistors and
    Nangate45 area; one row per (unit, dataflow)."""
    n, rows = ARRAY_SIZE, []
    arrays = {r["dataflow"]: r for r in detail
              if r["numerics"] == "fp4" and r["level"].endswith("per PE")}
    for key, unit in units.items():
        for df in ("os", "ws"):
            lanes = ArrayConfig(n, n, df, mac=MacConfig(numerics="fp4")).out_lanes
            arr = arrays[df]
            t = unit["transistors"] * lanes
            um2 = unit["nangate45_um2"] * lanes if unit["nangate45_um2"] else None
            arr_um2 = arr["nangate45_um2"] * n * n if arr["nangate45_um2"] else None
            rows.append({"unit": key, "dataflow": df, "lanes": lanes,
                         "unit_transistors": unit["transistors"], "transistors": t,
                         "transistors_per_pe": round(t / (n * n), 1),
                         "array_transistors": arr["total_transistors"],
                         "over_array": round(t / arr["total_transistors"], 4),
                         "nangate45_um2": um2 and round(um2, 2),
                         "over_array_um2": round(um2 / arr_um2, 4) if um2 and arr_um2
                         else None})
    return rows


def _overheads(detail):
    out = []
    by = {(r["level"], r["dataflow"], r["numerics"]): r for r in detail}
    for (level, df, numerics), r in by.items():
        if numerics != "fp4":
            continue
        base = by[(level, df, "int4")]
        item = {"level": level, "dataflow": df}
        for key in ("transistors", "nangate45_um2", "ice40_lut4", "depth",
                    "nangate45_delay_ps"):
            a, b = r[key], base[key]
            item[key] = round(a / b - 1, 4) if a is not None and b else None
        out.append(item)
    return out


def _pct(x):
    return "-" if x is None else f"{100 * x:+.1f}%"


def _markdown(d):
    t = d["target"]
    mac_rows = [[r["design"], r["flow"], r["transistors"], r["depth"], r["cells"],
                 r["flops"], r["ice40_lut4"]]
                for r in sorted(d["macs"], key=lambda r: (r["numerics"] != "fp4",
                                                          r["transistors"]))]
    det = [[r["level"], r["dataflow"], r["numerics"], r["transistors"], r["depth"],
            r["nangate45_um2"], r["nangate45_delay_ps"], r["ice40_lut4"],
            r["fmax_mhz"] if r["fmax_mhz"] else "= PE" if r["level"] != "MAC" and
            r["level"] != "PE" else "-"] for r in d["detail"]]
    ovh = [[o["level"], o["dataflow"], _pct(o["transistors"]), _pct(o["nangate45_um2"]),
            _pct(o["ice40_lut4"]), _pct(o["depth"]), _pct(o["nangate45_delay_ps"])]
           for o in d["overheads"]]
    a = d["array_target"]
    lines = [
        "# Numerics benchmark: int4 against FP4 (E2M1)", "",
        f"Produced by `{d['command']}` with {d['yosys']}; {d['seconds']} s. CMOS flow: "
        "`synth [-booth|-arith_tree]; dfflegalize -cell $_DFF_P_ 01; abc -g "
        "AND,NAND,OR,NOR,XOR,XNOR,MUX; stat -tech cmos`, depth `ltp -noff`; Nangate45: "
        "`hdl.flows.liberty` (abc -liberty, NLDM delay estimate); iCE40: `synth_ice40` "
        "LUT4s, Fmax from nextpnr on the UP5K (MAC, PE; an array's PEs meet only through "
        "registers, so its Fmax is the PE's).", "",
        "## Target", "",
        f"Best gate-level FP4 MAC (W=16, P=0) at depth <= the behavioural one: "
        f"**{t['best']['design']}**, {t['best']['transistors']} transistors, depth "
        f"{t['best']['depth']}: **{t['ratio']:.3f}x** the best behavioural FP4 flow "
        f"({t['behavioural']['flow']}: {t['behavioural']['transistors']}, depth "
        f"{t['behavioural']['depth']}); target <= {TARGET_RATIO:.2f}x and <= {INT4_BEST} "
        f"(the best int4 MAC; measured here: {t['int4_best_measured']['transistors']}): "
        f"**{'met' if t['met'] else 'not met'}**.", "",
        f"FP4 {ARRAY_SIZE}x{ARRAY_SIZE} OS array: {a['fp4']} transistors per PE against "
        f"{a['int4']} for int4 = **{a['ratio']:.3f}x** (target <= {ARRAY_TARGET:.2f}x: "
        f"**{'met' if a['met'] else 'not met'}**).", "",
        "## FP4 over int4", "",
        markdown_table(["level", "dataflow", "transistors", "Nangate45 um^2", "iCE40 LUT4",
                        "depth", "Nangate45 delay"], ovh), "",
        f"van Baalen et al. (2023) put FP formats at {100 * CLAIM[0]:.0f}-"
        f"{100 * CLAIM[1]:.0f}% more than INT in dedicated hardware.", "",
        "## int4 and FP4 side by side (default gate-level MAC of each; arrays per PE)", "",
        markdown_table(["level", "dataflow", "numerics", "transistors", "depth",
                        "Nangate45 um^2", "Nangate45 delay ps", "iCE40 LUT4",
                        "UP5K Fmax MHz"], det), "",
        "## Every FP4 MAC architecture (W=16, P=0)", "",
        markdown_table(["design", "flow", "transistors", "depth", "cells", "flops",
                        "iCE40 LUT4"], mac_rows), "",
    ]
    units = d["scale_units"]
    lines += [
        f"## The MX scale path per {ARRAY_SIZE}x{ARRAY_SIZE} FP4 array", "",
        "The GEMM results apply the two E8M0 block scales in the driver "
        "(`sim.drivers.blocked`). A chip would do it at the array edge, one unit per "
        "output lane (`hdl.mx_scale.ScaleUnit`, W = 16, combinational, from the project's "
        "gates; exact, no rounding; its output registers and the delivery of the scales "
        "to the edge are not counted):", "",
        markdown_table(["unit", "design", "transistors", "depth", "Nangate45 um^2",
                        "Nangate45 delay ps", "iCE40 LUT4"],
                       [[u["unit"], u["design"], u["transistors"], u["depth"],
                         u["nangate45_um2"], u["nangate45_delay_ps"], u["ice40_lut4"]]
                        for u in units.values()]), "",
        markdown_table(["unit", "dataflow", "lanes", "transistors", "per PE",
                        "array transistors", "over the array", "over the array (um^2)"],
                       [[r["unit"], r["dataflow"], r["lanes"], r["transistors"],
                         r["transistors_per_pe"], r["array_transistors"],
                         _pct(r["over_array"]), _pct(r["over_array_um2"])]
                        for r in d["scale_path"]]), "",
    ]
    notes = sorted({r["fpga_note"] for r in d["detail"] if r["fpga_note"]})
    if notes:
        lines += ["Place and route notes: " + " ".join(notes), ""]
    return "\n".join(lines)


def tool_calls():
    """Every tool run of the bench (:class:`sim.flow_calls.Call`): the MAC sweep's syntheses,
    the int4/FP4 table's syntheses, Liberty and place-and-route runs, and the scale
    units'. They are independent, so they all go to an executor at once; the tables are
    then built from the cache they filled."""
    from hdl.flows.fpga import ice40_fmax
    from hdl.flows.liberty import liberty_area
    from hdl.flows.synth import synthesize
    from hdl.mx_scale import ScaleUnit
    from sim.flow_calls import Call
    calls = [Call(synthesize, (cfg.verilog(),), {"top": "mac", "flow": flow})
             for cfg in mac_configs() for flow in _flows(cfg)]
    for *_, verilog, top, divisor in _detail_designs():
        calls += [Call(synthesize, (verilog,), {"top": top, "flow": "synth"}),
                  Call(liberty_area, (verilog, top))]
        if divisor == 1:
            calls.append(Call(ice40_fmax, (verilog, top, "up5k")))
    for _, _, norm in SCALE_UNITS:
        verilog = ScaleUnit(acc_width=16, normalize=norm).verilog()
        calls += [Call(synthesize, (verilog,), {"top": "mx_scale", "flow": "synth"}),
                  Call(liberty_area, (verilog, "mx_scale"))]
    return calls


def run_numerics_bench(outdir, *, progress=True, command=COMMAND, executor=None):
    """Run the bench and write ``outdir/numerics.json`` and ``numerics.md``; returns the
    JSON data. Every tool run goes to ``executor`` (:mod:`sim.execute`; default a local
    process pool) first, through the client's cache."""
    from tqdm import tqdm
    from sim.execute import LocalExecutor, tqdm_progress
    from sim.flow_calls import run_calls
    start = time.monotonic()
    calls = tool_calls()
    with tqdm(total=len(calls), desc="numerics: yosys, liberty, nextpnr", unit="run",
              file=sys.stderr, disable=not progress) as bar:
        with nullcontext(executor) if executor is not None else LocalExecutor() as pool:
            run_calls(calls, executor=pool, progress=tqdm_progress(bar))
    macs, detail, units = _sweep(None), _detail(None), _scale_units(None)
    arrays = {r["numerics"]: r["transistors"] for r in detail
              if r["level"].endswith("per PE") and r["dataflow"] == "os"}
    ratio = arrays["fp4"] / arrays["int4"]
    data = {
        "command": command, "yosys": yosys_version(),
        "host": {"python": sys.version.split()[0], "machine": platform.machine()},
        "target": _target(macs),
        "array_target": {"int4": arrays["int4"], "fp4": arrays["fp4"],
                         "ratio": round(ratio, 4), "target": ARRAY_TARGET,
                         "met": ratio <= ARRAY_TARGET},
        "overheads": _overheads(detail), "claim": {"fp_over_int": list(CLAIM),
                                                   "source": "van Baalen et al. 2023"},
        "detail": detail, "macs": macs,
        "scale_units": units, "scale_path": _scale_path(units, detail),
    }
    data["seconds"] = round(time.monotonic() - start, 1)
    outdir.mkdir(parents=True, exist_ok=True)
    write_json(outdir / "numerics.json", data)
    write_atomic(outdir / "numerics.md", _markdown(data))
    return data
