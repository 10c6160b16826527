"""``systolic bench --only energy``: pJ per MAC from gate-level switching on Nangate45,
written to ``build/bench/energy.{json,md}`` and ``energy.png`` (stacked bars).

Parts (all through :mod:`sim.studies.energy_study`; captures cached under
``build/cache/energy``):

* **mac**: every int4 MAC variant at W = 16 (multiplier x adder x fused x P = 0..2, and
  the behavioural MAC at each P), unit delay, 2,000 uniform random operand pairs. Target:
  the lowest-energy gate-level MAC <= 0.70x the lowest-energy behavioural MAC.
* **glitch**: the default MAC at P = 0..2, the best and the behavioural MAC in the three
  timing modes (zero, unit and Liberty delays: what glitches cost, and how pipeline
  registers stop them).
* **numerics**: the default MAC of int4, uint4 and fp4.
* **opensta**: switching energy against OpenSTA on the same toggles, the MAC and an 8x8
  WS array on a 32x32x32 GEMM. Target: within 2%.
* **arrays**: 8x8 and 16x16, WS and OS, on a uniform random 64x64x64 GEMM: pJ per useful
  MAC by category, against the same (default) MAC alone on the same kind of operands.
  Target (16x16): <= 2x. The capture speed of the 16x16 runs (target: 1,000 cycles of a
  16x16 array in <= 120 s).
* **data**: the default MAC and the 8x8 WS array on every data set (int4), and the FP4
  MAC and 8x8 WS FP4 array on MXFP4-quantized normal values and digits.
"""
import time

from hdl.array import ArrayConfig
from hdl.emit import write_atomic
from hdl.mac import MacConfig
from sim.studies.tables import markdown_table, write_json

__all__ = ["run_energy_bench", "MAC_TARGET", "ARRAY_TARGET", "OPENSTA_TOLERANCE",
           "CAPTURE_TARGET_S", "PARTS"]

MAC_TARGET = 0.70
ARRAY_TARGET = 2.0
OPENSTA_TOLERANCE = 0.02
CAPTURE_TARGET_S = 120.0
PARTS = ("mac", "glitch", "numerics", "opensta", "arrays", "data")
MAC_CYCLES = 2000


def _row(label, rep, macs):
    return {"design": label, **rep.to_json(macs=macs)}


def _mac_part(log):
    from sim.studies.area import all_mac_configs
    from sim.studies.energy_study import mac_energy
    rows = []
    for cfg in all_mac_configs(signed=True, acc_width=16, pipelines=(0, 1, 2)):
        rep, _ = mac_energy(cfg, cycles=MAC_CYCLES, glitch=True)
        rows.append(_row(cfg.slug, rep, rep.cycles) | {"config": cfg.__dict__})
        log(f"mac {cfg.slug}: {rows[-1]['pj_per_mac']:.4f} pJ")
    gate = [r for r in rows if r["config"]["multiplier"] != "behavioral"]
    beh = {r["config"]["pipeline"]: r for r in rows
           if r["config"]["multiplier"] == "behavioral"}
    best = min(gate, key=lambda r: r["pj_per_mac"])
    ref = beh[best["config"]["pipeline"]]               # the same pipeline depth
    low = min(beh.values(), key=lambda r: r["pj_per_mac"])
    ratio = best["pj_per_mac"] / ref["pj_per_mac"]
    per_p = {p: min((r for r in gate if r["config"]["pipeline"] == p),
                    key=lambda r: r["pj_per_mac"]) for p in sorted(beh)}
    target = {"best": best["design"], "best_pj": best["pj_per_mac"],
              "behavioural": ref["design"], "behavioural_pj": ref["pj_per_mac"],
              "ratio": ratio, "target_ratio": MAC_TARGET, "met": ratio <= MAC_TARGET,
              "lowest_behavioural": low["design"], "lowest_behavioural_pj": low["pj_per_mac"],
              "ratio_to_lowest_behavioural": best["pj_per_mac"] / low["pj_per_mac"],
              "per_pipeline": {p: {"best": r["design"], "best_pj": r["pj_per_mac"],
                                   "behavioural_pj": beh[p]["pj_per_mac"],
                                   "ratio": r["pj_per_mac"] / beh[p]["pj_per_mac"]}
                               for p, r in per_p.items()}}
    return rows, target


def _glitch_part(best_slug):
    from sim.studies.area import all_mac_configs
    from sim.studies.energy_study import mac_energy
    configs = {c.slug: c for c in all_mac_configs(signed=True, pipelines=(0, 1, 2))}
    picks = [MacConfig(), MacConfig(pipeline=1), MacConfig(pipeline=2),
             MacConfig(multiplier="behavioral")]
    if best_slug in configs and configs[best_slug] not in picks:
        picks.append(configs[best_slug])
    rows = []
    for cfg in picks:
        for timing in ("zero", "unit", "liberty"):
            rep, _ = mac_energy(cfg, cycles=MAC_CYCLES, timing=timing)
            rows.append(_row(cfg.slug, rep, rep.cycles))
    return rows


def _numerics_part():
    from sim.studies.energy_study import mac_energy
    rows = []
    for numerics, data in (("int4", "uniform"), ("uint4", "uniform"), ("fp4", "uniform"),
                           ("int4", "normal"), ("fp4", "normal")):
        cfg = MacConfig(numerics=numerics, signed=numerics != "uint4")
        rep, _ = mac_energy(cfg, dataset=data, cycles=MAC_CYCLES, glitch=True)
        rows.append(_row(cfg.slug, rep, rep.cycles) | {"data": data})
    return rows


def _opensta_part(log):
    from hdl.flows.energy import capture
    from hdl.flows.opensta import find_sta
    from hdl.flows.sta_power import opensta_power, switching_cross_check
    from sim.studies.energy_study import (array_stimulus, mac_stimulus, operands)
    if find_sta() is None:
        return {"skipped": "OpenSTA (sta) is not installed"}
    out = []
    mac = MacConfig()
    A, B = operands("uniform", 16, 64, 16, mac)
    cases = [("mac " + mac.slug, mac.verilog(), "mac", mac_stimulus(A, B, MAC_CYCLES))]
    arr = ArrayConfig(rows=8, cols=8, dataflow="ws")
    A, B = operands("uniform", 32, 32, 32, arr.mac)
    cases.append(("8x8 " + arr.slug, arr.verilog(), "systolic_array",
                  array_stimulus(arr, A, B)))
    for label, verilog, top, (ports, T, warmup) in cases:
        for glitch in (False, True):
            sim, act, model, mapped = capture(verilog, top, ports, cycles=T, warmup=warmup,
                                              glitch=glitch)
            start = time.monotonic()
            power = opensta_power(mapped["verilog"], top, mapped["liberty"],
                                  period_ns=model.period_ns, wire_load=model.wire_load)
            check = switching_cross_check(sim, act, model, power, period_ns=model.period_ns)
            check.update(design=label, glitch=glitch,
                         sta_seconds=round(time.monotonic() - start, 2),
                         met=abs(check["ratio"] - 1) <= OPENSTA_TOLERANCE)
            out.append(check)
            log(f"opensta {label} glitch={glitch}: ratio {check['ratio']:.4f}")
    return {"rows": out, "met": all(r["met"] for r in out)}


def _arrays_part(log, sizes=(8, 16), gemm=(64, 64, 64)):
    from sim.studies.energy_study import array_energy, mac_energy, operands
    mac_rep, mac_pj = mac_energy(MacConfig(), cycles=MAC_CYCLES, glitch=True)
    rows = []
    for n in sizes:
        for dataflow in ("ws", "os"):
            cfg = ArrayConfig(rows=n, cols=n, dataflow=dataflow)
            A, B = operands("uniform", *gemm[:2], gemm[2], cfg.mac)
            start = time.monotonic()
            rep, per = array_energy(cfg, A, B, glitch=True)
            macs = gemm[0] * gemm[1] * gemm[2]
            row = _row(f"{n}x{n} {dataflow.upper()} ({cfg.slug})", rep, macs)
            row.update(rows_=n, dataflow=dataflow, ratio_to_mac=per / mac_pj,
                       wall_seconds=round(time.monotonic() - start, 1),
                       capture_s_per_1000_cycles=rep.capture_seconds * 1000 / rep.cycles,
                       capture_cpu_s_per_1000_cycles=(rep.capture_cpu_seconds * 1000
                                                      / rep.cycles))
            rows.append(row)
            log(f"array {row['design']}: {per:.4f} pJ/MAC = {per / mac_pj:.2f}x the MAC")
    big = [r for r in rows if r["rows_"] == max(sizes)]
    speed = [r["capture_s_per_1000_cycles"] for r in big]
    cpu = [r["capture_cpu_s_per_1000_cycles"] for r in big]
    return {"mac_alone": _row("MAC alone " + MacConfig().slug, mac_rep, mac_rep.cycles),
            "rows": rows,
            "target": {"ratio_max": max(r["ratio_to_mac"] for r in big),
                       "target_ratio": ARRAY_TARGET,
                       "met": all(r["ratio_to_mac"] <= ARRAY_TARGET for r in big)},
            "capture": {"seconds_per_1000_cycles": max(speed) if speed else None,
                        "cpu_seconds_per_1000_cycles": max(cpu) if cpu else None,
                        "target_s": CAPTURE_TARGET_S,
                        "met": bool(speed) and max(speed) <= CAPTURE_TARGET_S}}


def _data_part(log):
    from sim.studies.energy_study import DATASETS, array_energy, mac_energy, operands
    rows = []
    cases = [(MacConfig(), d) for d in DATASETS]
    fp4 = MacConfig(numerics="fp4")
    cases += [(fp4, "normal"), (fp4, "digits")]
    for mac, data in cases:
        label = "mxfp4" if mac.numerics == "fp4" else "int4"
        rep, per = mac_energy(mac, dataset=data, cycles=MAC_CYCLES, glitch=True)
        arr = ArrayConfig(rows=8, cols=8, dataflow="ws", mac=mac)
        A, B = operands(data, 64, 64, 32, mac)
        arep, aper = array_energy(arr, A, B, glitch=True)
        rows.append({"data": data, "format": label, "mac": mac.slug, "mac_pj": per,
                     "array": arr.slug, "array_pj_per_mac": aper,
                     "mac_toggles_per_net": rep.toggles_per_net,
                     "array_toggles_per_net": arep.toggles_per_net})
        log(f"data {data} {label}: MAC {per:.4f}, 8x8 WS {aper:.4f} pJ/MAC")
    return rows


def _picture(data, path, command):
    from hdl.flows.energy import ENERGY_CATEGORIES
    from sim.studies.plot import figure, save_figure
    bars = []
    if "glitch" in data:
        for r in data["glitch"]:
            if r["timing"] == "unit":
                bars.append((r["design"].replace("mac_s16_", "MAC "), r))
    if "arrays" in data:
        bars.append(("MAC alone", data["arrays"]["mac_alone"]))
        for r in data["arrays"]["rows"]:
            bars.append((r["design"].split(" (")[0], r))
    if not bars:
        return None
    fig, (ax,) = figure(1, width=max(6, 1.1 * len(bars)), height=4.5)
    bottom = [0.0] * len(bars)
    for cat in ENERGY_CATEGORIES:
        vals = [r["categories_pj_per_mac"][cat] for _, r in bars]
        if not any(vals):
            continue
        ax.bar(range(len(bars)), vals, bottom=bottom, label=cat.replace("_", " "))
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_xticks(range(len(bars)))
    ax.set_xticklabels([b[0].replace("_", " ") for b in bars], rotation=30, ha="right",
                       fontsize=7)
    ax.set_ylabel("pJ per (useful) MAC")
    ax.set_title("Energy by category, unit delay (glitches included), Nangate45 1.1 V")
    ax.legend(fontsize=7, ncol=2)
    return save_figure(fig, path, f"{command}; hdl.flows.energy on Yosys-mapped Nangate45 "
                                  "netlists, uniform random int4 operands")


def _f(x, nd=4):
    return None if x is None else round(x, nd)


def _markdown(data, command):
    md = ["# Energy benchmark", "",
          f"Produced by `{command}` in {data['seconds']} s. Nangate45 (1.1 V, wire load "
          "5K_hvratio_1_1, 1 ns clock for leakage), Yosys-mapped netlists simulated by "
          "hdl.flows.activity; unit delay (glitches counted) unless marked zero delay. "
          "Energy per cycle of a MAC = per MAC; arrays: per useful MAC (M K N).", ""]
    if "mac" in data:
        t = data["mac"]["target"]
        md += ["## Lowest-energy int4 MAC", "",
               f"Lowest-energy gate-level MAC: **{t['best']}**, {t['best_pj']:.4f} pJ/MAC; "
               f"the behavioural MAC at the same pipeline depth ({t['behavioural']}): "
               f"{t['behavioural_pj']:.4f} pJ/MAC: **{t['ratio']:.3f}x** (target <= "
               f"{MAC_TARGET}: **{'met' if t['met'] else 'not met'}**). Against the "
               f"lowest-energy behavioural MAC of any depth ({t['lowest_behavioural']}, "
               f"{t['lowest_behavioural_pj']:.4f} pJ/MAC, its pipeline register stops the "
               f"glitches of its multiplier reaching its adder): "
               f"{t['ratio_to_lowest_behavioural']:.3f}x.", "",
               markdown_table(["P", "best gate-level", "pJ/MAC", "behavioural pJ/MAC",
                               "ratio"],
                              [[p, v["best"], _f(v["best_pj"]), _f(v["behavioural_pj"]),
                                _f(v["ratio"], 3)] for p, v in t["per_pipeline"].items()]),
               "", "All variants, lowest energy first:", "",
               markdown_table(["design", "pJ/MAC", "arithmetic", "accumulator", "pipeline",
                               "clock", "toggles/net/cycle"],
                              [[r["design"], _f(r["pj_per_mac"]),
                                _f(r["categories_pj_per_mac"]["arithmetic"]),
                                _f(r["categories_pj_per_mac"]["accumulator"]),
                                _f(r["categories_pj_per_mac"]["pipeline"]),
                                _f(r["categories_pj_per_mac"]["clock"]),
                                _f(r["toggles_per_net"], 3)]
                               for r in sorted(data["mac"]["rows"],
                                               key=lambda r: r["pj_per_mac"])]), ""]
    if "glitch" in data:
        md += ["## Glitches: zero, unit and Liberty delays", "",
               markdown_table(["design", "timing", "pJ/MAC", "arithmetic", "pipeline",
                               "toggles/net/cycle"],
                              [[r["design"], r["timing"], _f(r["pj_per_mac"]),
                                _f(r["categories_pj_per_mac"]["arithmetic"]),
                                _f(r["categories_pj_per_mac"]["pipeline"]),
                                _f(r["toggles_per_net"], 3)] for r in data["glitch"]]), ""]
    if "numerics" in data:
        md += ["## Numerics (default MAC of each format)", "",
               markdown_table(["design", "operands", "pJ/MAC", "toggles/net/cycle"],
                              [[r["design"], r["data"], _f(r["pj_per_mac"]),
                                _f(r["toggles_per_net"], 3)] for r in data["numerics"]]), ""]
    if "opensta" in data:
        o = data["opensta"]
        if "skipped" in o:
            md += ["## OpenSTA cross-check", "", f"Skipped: {o['skipped']}.", ""]
        else:
            md += ["## OpenSTA cross-check (switching energy, same toggles)", "",
                   f"Target: within {OPENSTA_TOLERANCE:.0%}: "
                   f"**{'met' if o['met'] else 'not met'}**. Internal power is not "
                   "compared: OpenSTA 2019 counts rise + fall per toggle and propagated "
                   "`when` probabilities (its column is for information).", "",
                   markdown_table(["design", "timing", "project pJ", "OpenSTA pJ", "ratio",
                                   "instances", "OpenSTA/project internal"],
                                  [[r["design"], "unit" if r["glitch"] else "zero",
                                    _f(r["project_pj"], 3), _f(r["opensta_pj"], 3),
                                    _f(r["ratio"], 4), r["instances"],
                                    _f(r["internal_ratio"], 2)] for r in o["rows"]]), ""]
    if "arrays" in data:
        a = data["arrays"]
        cats = ["arithmetic", "accumulator", "data_movement", "drain", "ports", "clock",
                "leakage"]
        t, c = a["target"], a["capture"]
        speed = ("n/a" if c["seconds_per_1000_cycles"] is None
                 else f"{c['seconds_per_1000_cycles']:.1f} s wall "
                      f"({c['cpu_seconds_per_1000_cycles']:.1f} s CPU, one core)")
        md += ["## Arrays on a uniform random 64x64x64 GEMM", "",
               f"MAC alone: {a['mac_alone']['pj_per_mac']:.4f} pJ/MAC. Largest arrays: "
               f"at most **{t['ratio_max']:.2f}x** the MAC alone per useful MAC (target <= "
               f"{ARRAY_TARGET}: **{'met' if t['met'] else 'not met'}**). Capture speed "
               f"(16x16, unit delay): "
               f"{speed} per 1,000 cycles (target <= {CAPTURE_TARGET_S:.0f} s: "
               f"**{'met' if c['met'] else 'not met'}**).", "",
               markdown_table(["design", "cycles", "pJ/useful MAC", "x MAC"] +
                              [f"{k}" for k in cats] + ["capture s"],
                              [[r["design"], r["cycles"], _f(r["pj_per_mac"]),
                                _f(r["ratio_to_mac"], 2)] +
                               [_f(r["categories_pj_per_mac"][k]) for k in cats] +
                               [r["capture_seconds"]] for r in a["rows"]]), ""]
    if "data" in data:
        md += ["## Data dependence", "",
               markdown_table(["data", "format", "MAC pJ/MAC", "8x8 WS pJ/useful MAC",
                               "MAC toggles/net/cycle"],
                              [[r["data"], r["format"], _f(r["mac_pj"]),
                                _f(r["array_pj_per_mac"]), _f(r["mac_toggles_per_net"], 3)]
                               for r in data["data"]]), ""]
    if data.get("picture"):
        md += [f"![energy by category]({data['picture']})", ""]
    return "\n".join(md)


def run_energy_bench(outdir, *, parts=PARTS, command="systolic bench --only energy",
                     log=print):
    """Run ``parts`` of the energy bench into ``outdir``; returns the data written to
    ``energy.json``."""
    start = time.monotonic()
    data = {"command": command}
    if "mac" in parts:
        rows, target = _mac_part(log)
        data["mac"] = {"rows": rows, "target": target}
    if "glitch" in parts:
        data["glitch"] = _glitch_part(data.get("mac", {}).get("target", {}).get("best"))
    if "numerics" in parts:
        data["numerics"] = _numerics_part()
    if "opensta" in parts:
        data["opensta"] = _opensta_part(log)
    if "arrays" in parts:
        data["arrays"] = _arrays_part(log)
    if "data" in parts:
        data["data"] = _data_part(log)
    data["seconds"] = round(time.monotonic() - start, 1)
    outdir.mkdir(parents=True, exist_ok=True)
    pic = _picture(data, outdir / "energy.png", command)
    data["picture"] = pic.name if pic else None
    write_json(outdir / "energy.json", data)
    write_atomic(outdir / "energy.md", _markdown(data, command) + "\n")
    return data
