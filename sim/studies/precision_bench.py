"""``systolic bench --only precision``: what the fusable array (hdl.fusion) costs and buys.

* **area** (Yosys CMOS transistors and depth, Nangate45 um^2 via hdl.flows.liberty) of
  one PE of each kind, at W = 16 and W = 32, OS (compact) and WS (shadow weights): the
  plain int4 PE, the fusable PE built for W4A8 and for int8, and a native int8 PE (the
  same generator with 8-bit operands). A 16x16 array is estimated as 256 PEs (the top
  is wiring only; the bench synthesizes PEs, not the 256-PE netlist, to stay minutes
  on a shared 2-core machine); "int4 + int8/4" is a plain 16x16 int4 array plus a
  native int8 array of 64 MACs.
* **MACs per cycle** of a 64x64x64 GEMM on a 16x16 fusable array in each precision,
  in RTL (Icarus), checked against numpy and the cycle model.
* **a shipped model's layer** (llama-3.2-1b, decode batch 16 and prefill 128 tokens) in
  W4A8 against int4: cycle model, every GEMM of the layer on the 16x16 array.

* **the digits MLP** (:mod:`sim.studies.digits`, the whole test set): float32, int4 and
  MXFP4 accuracy from the numpy model of the array (the RTL reproduces it exactly:
  ``systolic digits``, tests/test_mx_gemm.py), W4A8 with both GEMMs in RTL on an 8x8 WS
  array fused for W4A8 (:func:`digits_rows`).
* **energy** per useful MAC per precision (:func:`energy_rows`: the gate-level energy
  flow of :mod:`hdl.flows.energy` on an 8x8 WS array, plain and fused, one random GEMM
  per precision).
"""
import json
import time

import numpy as np

from hdl.array import ArrayConfig, pe_verilog
from hdl.emit import write_atomic
from hdl.flows.synth import synthesize_many
from hdl.mac import MacConfig

WIDTHS = (16, 32)
DATAFLOWS = (("os", False), ("ws", True))
KINDS = ("int4", "fused w4a8", "fused int8", "native int8")


def _pe(kind, df, db, W):
    if kind == "native int8":
        return pe_verilog(MacConfig(width=8, acc_width=W), df, double_buffer=db)
    fusion = {"int4": "none", "fused w4a8": "w4a8", "fused int8": "int8"}[kind]
    return pe_verilog(MacConfig(acc_width=W), df, double_buffer=db, fusion=fusion)


def area_rows():
    from hdl.flows.liberty import liberty_area
    designs = [(kind, df, db, W) for W in WIDTHS for df, db in DATAFLOWS for kind in KINDS]
    texts = [_pe(*d) for d in designs]
    synth = synthesize_many([{"verilog": t, "top": "pe", "flow": "synth", "ice40": False}
                             for t in texts])
    rows = []
    for (kind, df, db, W), text, res in zip(designs, texts, synth):
        lib = liberty_area(text, "pe")
        rows.append({"kind": kind, "dataflow": df, "acc_width": W,
                     "transistors": res.transistors, "depth": res.depth,
                     "flops": res.flops, "nangate45_um2": round(lib["area_um2"], 2),
                     "delay_ps": lib.get("delay_ps")})
    return rows


def area_summary(rows):
    """Per (W, dataflow): the 16x16 fusable arrays against plain int4 and against plain
    int4 + a native int8 array of a quarter of the MACs (64)."""
    out = []
    for W in WIDTHS:
        for df, _ in DATAFLOWS:
            r = {x["kind"]: x for x in rows if x["acc_width"] == W and x["dataflow"] == df}
            for kind in ("fused w4a8", "fused int8"):
                for key in ("transistors", "nangate45_um2"):
                    fused = 256 * r[kind][key]
                    plain = 256 * r["int4"][key]
                    both = plain + 64 * r["native int8"][key]
                    out.append({"acc_width": W, "dataflow": df, "kind": kind, "metric": key,
                                "fused_16x16": round(fused), "plain_int4_16x16": round(plain),
                                "ratio_vs_int4": round(fused / plain, 4),
                                "int4_plus_int8_quarter": round(both),
                                "ratio_vs_int4_plus_int8": round(fused / both, 4)})
    return out


def throughput_rows(*, simulator="icarus", size=64, acc_width=32):
    from sim.drivers.gemm import run_gemm
    from sim.drivers.operands import precision_operands
    rows = []
    for df in ("os", "ws"):
        cfg = ArrayConfig(rows=16, cols=16, dataflow=df, fusion="int8",
                          mac=MacConfig(acc_width=acc_width))
        for n, precision in enumerate(("int4", "w4a8", "int8")):
            A, B = precision_operands(n, size, size, size, precision)
            t0 = time.monotonic()
            r = run_gemm(A, B, cfg, simulator=simulator, precision=precision)
            rows.append({"dataflow": df, "precision": precision, "cycles": r.cycles,
                         "model_cycles": r.model_cycles, "exact": bool(np.array_equal(
                             r.C, A @ B)), "macs_per_cycle": round(r.macs / r.cycles, 2),
                         "wall_seconds": round(time.monotonic() - t0, 1)})
        base = rows[-3]["macs_per_cycle"]
        for r in rows[-3:]:
            r["vs_int4"] = round(r["macs_per_cycle"] / base, 4)
    return rows


def workload_rows(model_name="llama-3.2-1b", acc_width=32):
    from sim.models.workload import Phase, layer_gemms, load_config, model_shape
    from sim.drivers.gemm import gemm_model_cycles
    cfg_json, name = load_config(model_name)
    model = model_shape(cfg_json, name=name)
    rows = []
    for phase in (Phase("decode", batch=16, context=512), Phase("prefill", tokens=128)):
        for df in ("os", "ws"):
            cfg = ArrayConfig(rows=16, cols=16, dataflow=df, fusion="int8",
                              mac=MacConfig(acc_width=acc_width))
            cyc = {}
            for precision in ("int4", "w4a8"):
                cyc[precision] = sum(g.count * gemm_model_cycles(g.M, g.K, g.N, cfg, precision)
                                     for g in layer_gemms(model, phase))
            rows.append({"model": name, "phase": phase.describe(), "dataflow": df,
                         "int4_cycles": cyc["int4"], "w4a8_cycles": cyc["w4a8"],
                         "w4a8_over_int4": round(cyc["w4a8"] / cyc["int4"], 3)})
    return rows


#: The energy part's array and GEMM (pJ per useful MAC per precision, gate-level).
ENERGY_ARRAY, ENERGY_GEMM = 8, (16, 32, 16)


def energy_rows(*, size=ENERGY_ARRAY, gemm=ENERGY_GEMM, acc_width=32, cache=True,
                progress=None):
    """pJ per useful MAC (unit delay, Nangate45, :mod:`hdl.flows.energy`) of one random
    ``gemm`` over each precision's full operand range on a ``size`` x ``size`` WS array
    at W = ``acc_width``: the plain int4 array in int4, and the array fused for int8 in
    int4, W4A8 and int8 (a useful MAC is one product of the precision: an int8 x int8
    MAC takes four digit steps)."""
    from sim.drivers.operands import precision_operands
    from sim.studies.energy_study import array_energy
    rows = []
    for fusion, precision in (("none", "int4"), ("int8", "int4"), ("int8", "w4a8"),
                              ("int8", "int8")):
        cfg = ArrayConfig(rows=size, cols=size, dataflow="ws", fusion=fusion,
                          mac=MacConfig(acc_width=acc_width))
        A, B = precision_operands(7, *gemm, precision)
        rep, pj = array_energy(cfg, A, B, precision=precision, cache=cache,
                               progress=progress)
        scale = pj / rep.total_pj if rep.total_pj else 0.0
        cats = rep.categories_pj
        rows.append({"array": f"{size}x{size} WS, fusion {fusion}", "precision": precision,
                     "gemm": "x".join(map(str, gemm)), "cycles": rep.cycles,
                     "pj_per_mac": round(pj, 4),
                     "arithmetic": round(cats.get("arithmetic", 0.0) * scale, 4),
                     "clock": round(cats.get("clock", 0.0) * scale, 4)})
    base = rows[0]["pj_per_mac"]
    for r in rows:
        r["vs_plain_int4"] = round(r["pj_per_mac"] / base, 3)
    return rows


def digits_rows(*, size=8, simulator=None, limit=None):
    """The digits MLP on the test set (the first ``limit`` images; all by default): one
    row per network with its accuracy, quantization, and for W4A8 (RTL on the
    ``size`` x ``size`` WS array fused for it, Verilator when present) whether every
    GEMM equals numpy's int64 product and its cycles the model's."""
    from sim.drivers.blocked import model_runner, rtl_runner
    from sim.runner import available_simulators
    from sim.studies.digits import QUANTIZATION, digits_arrays, run_digits
    sim = simulator or ("verilator" if "verilator" in available_simulators() else "icarus")
    array = digits_arrays(size, size, "ws")["w4a8"]
    t0 = time.monotonic()
    report = run_digits(runners={"int4": model_runner("int4"),
                                 "mxfp4": model_runner("mxfp4"),
                                 "w4a8": rtl_runner(array, simulator=sim,
                                                    precision="w4a8")}, limit=limit)
    seconds = round(time.monotonic() - t0, 1)
    rows = [{"network": "float32", "quantization": "-", "accuracy": report.accuracy[
        "float32"], "gemms": "numpy", "exact": "-", "cycles": "-"}]
    for fmt, gemms in report.layers.items():
        rtl = fmt == "w4a8"
        rows.append({"network": fmt, "quantization": QUANTIZATION[fmt],
                     "accuracy": round(report.accuracy[fmt], 4),
                     "gemms": f"RTL {size}x{size} WS fused w4a8, {sim}, {seconds} s"
                     if rtl else "numpy model of the array",
                     "exact": all(g.matches and g.cycles == g.model_cycles for g in gemms)
                     if rtl else "-",
                     "cycles": " + ".join(str(g.cycles) for g in gemms) if rtl else "-"})
    rows[0]["accuracy"] = round(rows[0]["accuracy"], 4)
    for r in rows:
        r["n_test"] = report.n_test
    return rows


def run_precision_bench(outdir, *, command="systolic bench --only precision"):
    t0 = time.monotonic()
    area = area_rows()
    data = {"command": command, "organisation": organisation_rows(),
            "area_pe": area, "area_16x16": area_summary(area),
            "throughput_64cubed": throughput_rows(), "workload": workload_rows(),
            "digits": digits_rows(), "energy": energy_rows()}
    data["seconds"] = round(time.monotonic() - t0, 1)
    write_atomic(outdir / "precision.json", json.dumps(data, indent=1) + "\n")
    write_atomic(outdir / "precision.md", to_markdown(data))
    return data


def _table(rows, keys):
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def to_markdown(data):
    return "\n\n".join([
        f"# Precision fusion (`{data['command']}`, {data['seconds']} s)",
        "## The organisation, at MAC level (P = 0, Yosys CMOS transistors, Nangate45)",
        _table(data["organisation"], ["design", "acc_width", "transistors", "depth",
                                      "nangate45_um2", "delay_ps"]),
        "## One PE of each kind (Yosys CMOS transistors, Nangate45)",
        _table(data["area_pe"], ["kind", "dataflow", "acc_width", "transistors", "depth",
                                 "flops", "nangate45_um2", "delay_ps"]),
        "## 16x16 arrays (256 PEs; int4 + int8/4: plus 64 native int8 PEs)",
        _table(data["area_16x16"], ["acc_width", "dataflow", "kind", "metric",
                                    "fused_16x16", "plain_int4_16x16", "ratio_vs_int4",
                                    "int4_plus_int8_quarter", "ratio_vs_int4_plus_int8"]),
        "## 64x64x64 GEMM on the 16x16 fusable array (W = 32), RTL (Icarus)",
        _table(data["throughput_64cubed"], ["dataflow", "precision", "cycles",
                                            "model_cycles", "exact", "macs_per_cycle",
                                            "vs_int4", "wall_seconds"]),
        "## One decoder layer, W4A8 against int4 (cycle model, 16x16, W = 32)",
        _table(data["workload"], ["model", "phase", "dataflow", "int4_cycles",
                                  "w4a8_cycles", "w4a8_over_int4"]),
        "## The digits MLP: W4A8 next to int4 and MXFP4 (`sim.studies.digits`)",
        _table(data["digits"], ["network", "quantization", "n_test", "accuracy", "gemms",
                                "exact", "cycles"]),
        "## Energy per useful MAC (gate-level switching, unit delay, Nangate45 1.1 V, "
        "pJ; `sim.studies.precision_bench.energy_rows`)",
        _table(data["energy"], ["array", "precision", "gemm", "cycles", "pj_per_mac",
                                "arithmetic", "clock", "vs_plain_int4"]), ""])


def organisation_rows():
    """The organisation choice at MAC level (P = 0): the plain int4 MAC, the Horner
    digit MAC built here (hdl.fusion.FusedMAC) and the product-shift alternative
    (hdl.fusion.ShiftFusedMAC), at each W."""
    from hdl.emit import to_verilog
    from hdl.flows.liberty import liberty_area
    from hdl.fusion import FusedMAC, ShiftFusedMAC
    designs = []
    for W in WIDTHS:
        cfg = MacConfig(acc_width=W)
        designs += [("plain int4 MAC", W, cfg.verilog(name="mac", cache=False)),
                    ("Horner digit MAC (built)", W, to_verilog(FusedMAC(cfg, "int8"),
                                                               name="mac")),
                    ("product-shift digit MAC", W, to_verilog(ShiftFusedMAC(cfg),
                                                              name="mac"))]
    synth = synthesize_many([{"verilog": v, "top": "mac", "flow": "synth", "ice40": False}
                             for *_, v in designs])
    rows = []
    for (name, W, v), res in zip(designs, synth):
        lib = liberty_area(v, "mac")
        rows.append({"design": name, "acc_width": W, "transistors": res.transistors,
                     "depth": res.depth, "nangate45_um2": round(lib["area_um2"], 2),
                     "delay_ps": lib.get("delay_ps")})
    return rows
