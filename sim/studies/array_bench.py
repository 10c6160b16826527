"""Array benchmark: ``build/bench/array.json`` and ``array.md``.

Four parts, each a small function the CLI can reuse:

* :func:`measure_generation` -- Verilog generation time and size of a square OS array
  (hierarchical :func:`hdl.array.array_verilog`, or Amaranth's own flat conversion of
  :class:`hdl.array_flat.AmaranthArray` with ``flat=True``);
* :func:`measure_sim_speed` -- simulated cycles per second of a GEMM on Verilator or
  Icarus (cocotb, :func:`sim.drivers.gemm.run_gemms`) or on ``amaranth.sim``
  (:func:`amaranth_sim_gemm`);
* :func:`utilization_table` -- per GEMM shape and dataflow, with and without fold
  overlap: model cycles, SCALE-Sim's cycles, both utilizations, and (for shapes small
  enough) the cycles measured in RTL, which must equal the model;
* :func:`measure_area` -- transistors per PE of an 8x8 array from :func:`hdl.flows.synth.synthesize`
  (``asic_script`` flattens the hierarchy before ``synth``, so all R*C PEs are counted).

Run it with ``systolic bench --only array`` (also part of ``make bench``); every number in the
Markdown names the command that produced it.
"""
import json
import sys
import time
from pathlib import Path

import numpy as np

from hdl.array import array_verilog, pe_verilog
from hdl.array_flat import amaranth_flat_verilog
from hdl.emit import write_atomic
from hdl.flows.synth import cmos_flow
from hdl.mac import MacConfig
from sim.models.cycles import model_cycles, scalesim_cycles, utilization, fold_counts
from sim.drivers.gemm import random_operands
from sim.studies.provenance import tool_versions
from sim.drivers.amaranth import amaranth_sim_gemm
from sim.studies.tables import markdown_table, write_json

__all__ = ["run_array_bench", "measure_generation", "measure_sim_speed", "amaranth_sim_gemm",
           "utilization_table", "measure_area", "GEN_SIZES", "UTIL_SHAPES", "AREA_TARGET",
           "DEFAULT_COMMAND"]

DEFAULT_COMMAND = "systolic bench --only array"
GEN_SIZES = (8, 16, 32, 64, 128, 256)
FLAT_BUDGET_S = 120.0          # skip a flat conversion projected (x (R/R_prev)^2) above this
UTIL_SHAPES = ((16, 16, 16), (64, 64, 64), (100, 37, 50), (1, 64, 64), (48, 200, 40),
               (512, 512, 512))
RTL_MAX_MACS = 64 ** 3         # shapes up to this many MACs are also run in RTL ...
RTL_ALWAYS = ((512, 512, 512), "os", True)    # ... and this one (the utilization target)
SIM_ARRAY = 16
AREA_ARRAY = 8
AREA_TARGET = 1575             # transistors per PE, 8x8 OS array, default MAC


def _bar(total, desc, enabled):
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, file=sys.stderr, leave=True)


def _bar_progress(bar):
    """A :func:`sim.execute.run_jobs` progress callback for ``bar`` (or None)."""
    if bar is None:
        return None
    from sim.execute import tqdm_progress
    return tqdm_progress(bar)


def _tick(bar, n=1, **postfix):
    if bar is not None:
        if postfix:
            bar.set_postfix(**postfix, refresh=False)
        bar.update(n)


# ---------------------------------------------------------------------------------------
# Generation

def measure_generation(R, C=None, *, dataflow="os", mac=None, flat=False):
    """``{"rows", "cols", "seconds", "bytes", "flat"}`` for emitting an R x C array."""
    C = R if C is None else C
    mac = mac or MacConfig()
    stats = {}
    if flat:
        amaranth_flat_verilog(R, C, dataflow, mac, stats=stats)
    else:
        array_verilog(R, C, dataflow, mac, stats=stats)
    return {"rows": R, "cols": C, "flat": flat, "seconds": round(stats["seconds"], 3),
            "bytes": stats["bytes"]}


def generation_table(sizes=GEN_SIZES, *, budget=FLAT_BUDGET_S, progress=True):
    """Hierarchical and flat generation per size; flat sizes whose projected time
    exceeds ``budget`` are skipped (recorded with the reason)."""
    rows = []
    bar = _bar(2 * len(sizes), "array bench: verilog generation", progress)
    prev = None                                 # (R, seconds) of the last flat run
    for R in sizes:
        hier = measure_generation(R)
        _tick(bar, R=R)
        flat, skipped = None, None
        projected = prev[1] * (R / prev[0]) ** 2 if prev else 0.0
        if projected > budget:
            skipped = (f"skipped: projected {projected:.0f} s (from {prev[1]:.0f} s at "
                       f"{prev[0]}x{prev[0]}, time grows with R*C) > budget {budget:.0f} s")
        else:
            flat = measure_generation(R, flat=True)
            prev = (R, flat["seconds"])
        _tick(bar, R=R)
        rows.append({"R": R, "hierarchical": hier, "flat": flat, "flat_skipped": skipped})
    if bar is not None:
        bar.close()
    return rows


# ---------------------------------------------------------------------------------------
# Simulation speed

def _jobs(shape, count, mac, seed=0):
    rng = np.random.default_rng(seed)
    return [random_operands(rng, *shape, mac) for _ in range(count)]


def measure_sim_speed(simulator, *, rows=SIM_ARRAY, cols=SIM_ARRAY, dataflow="os",
                      shape=(64, 64, 64), count=4, mac=None, build_root=None):
    """Simulated cycles per second of ``count`` GEMMs of ``shape`` (checked against
    numpy and the cycle model) on ``simulator`` ("verilator", "icarus" or "amaranth")."""
    from hdl.array import ArrayConfig
    from sim.drivers.gemm import run_gemms
    mac = mac or MacConfig()
    cfg = ArrayConfig(rows, cols, dataflow, mac)
    jobs = _jobs(shape, count, mac)
    t0 = time.perf_counter()
    if simulator == "amaranth":
        cycles = seconds = setup = 0.0
        for A, B in jobs:
            Cm, last, info = amaranth_sim_gemm(A, B, cfg)
            assert np.array_equal(Cm, A @ B), "amaranth.sim: wrong GEMM result"
            want = model_cycles(*shape, rows, cols, dataflow, pipeline=mac.pipeline,
                                k_chunk=cfg.mac.max_safe_k)
            assert last == want, f"amaranth.sim: {last} cycles != model {want}"
            cycles += info["simulated_cycles"]
            seconds += info["seconds"]
            setup += info["setup_seconds"]
        cpu = None
        build = setup
    else:
        results = run_gemms(jobs, cfg, simulator=simulator, build_root=build_root)
        for (A, B), r in zip(jobs, results):
            assert np.array_equal(r.C, A @ B), f"{simulator}: wrong GEMM result"
            assert r.cycles == r.model_cycles, f"{simulator}: RTL != model cycles"
        cycles = sum(r.simulated_cycles for r in results)
        seconds = sum(r.sim_seconds for r in results)
        cpu = sum(r.sim_cpu_seconds for r in results)
        build = results[0].build_seconds
        if not build:                            # cached: the time of the last build
            from sim.drivers.gemm import _build_dir, DEFAULT_BUILD_ROOT
            stamp = _build_dir(cfg, simulator, build_root or DEFAULT_BUILD_ROOT) / \
                ".systolic-build.json"
            try:
                build = float(json.loads(stamp.read_text()).get("seconds", 0.0))
            except (OSError, ValueError):
                build = 0.0
    return {"simulator": simulator, "array": f"{rows}x{cols}", "dataflow": dataflow,
            "gemm": "x".join(map(str, shape)), "gemms": count, "cycles": int(cycles),
            "seconds": round(seconds, 3), "cycles_per_s": round(cycles / seconds, 1),
            "cpu_cycles_per_s": round(cycles / cpu, 1) if cpu else None,
            "build_seconds": round(build, 1), "wall_seconds": round(time.perf_counter() - t0, 1)}


# ---------------------------------------------------------------------------------------
# Utilization

def utilization_table(R=SIM_ARRAY, C=SIM_ARRAY, shapes=UTIL_SHAPES, *, simulator="verilator",
                      rtl_max_macs=RTL_MAX_MACS, mac=None, build_root=None, progress=True,
                      executor=None):
    """One row per (shape, dataflow, fold overlap); shapes with at most ``rtl_max_macs``
    MACs also run in RTL (``simulator``; None to skip) and must match the model. The
    RTL runs (one per dataflow and overlap) go to ``executor`` together
    (:func:`sim.batch.simulate_many`; default a local pool)."""
    from hdl.array import ArrayConfig
    from sim.batch import SimBatch, simulate_many
    mac = mac or MacConfig()
    combos, batches = [], []
    for df, ov in [(df, ov) for df in ("ws", "os") for ov in (False, True)]:
        # without fold overlap: the hardware without the second register (compact PEs)
        cfg = ArrayConfig(R, C, df, mac, fold_overlap=ov, double_buffer=ov)
        small = [s for s in shapes if s[0] * s[1] * s[2] <= rtl_max_macs
                 or (s, df, ov) == RTL_ALWAYS and rtl_max_macs >= RTL_MAX_MACS]
        if simulator and small:
            batches.append(SimBatch([_jobs(s, 1, mac, seed=i)[0] for i, s in enumerate(small)],
                                    cfg, simulator, build_root, label=f"{df} overlap={ov}"))
        combos.append((df, ov, cfg, small, len(batches) - 1 if simulator and small else None))
    bar = _bar(len(batches), "array bench: utilization (RTL vs model)", progress)
    results = simulate_many(batches, executor=executor, progress=_bar_progress(bar))
    rows = []
    for df, ov, cfg, small, b in combos:
        measured = {}
        if b is not None:
            for s, (A, B), r in zip(small, batches[b].items, results[b]):
                assert np.array_equal(r.C, A @ B), f"{df} {s}: wrong result"
                assert r.cycles == r.model_cycles, (f"{df} overlap={ov} {s}: RTL {r.cycles}"
                                                    f" != model {r.model_cycles}")
                measured[s] = r.cycles
        for s in shapes:
            M, K, N = s
            model = model_cycles(M, K, N, R, C, df, pipeline=mac.pipeline, fold_overlap=ov,
                                 k_chunk=cfg.mac.max_safe_k, double_buffer=cfg.double_buffer)
            ss = scalesim_cycles(M, K, N, R, C, df)
            rows.append({"shape": f"{M}x{K}x{N}", "dataflow": df, "fold_overlap": ov,
                         "model_cycles": model, "rtl_cycles": measured.get(s),
                         "scalesim_cycles": ss,
                         "utilization": round(utilization(M, K, N, R, C, model), 4),
                         "scalesim_utilization": round(utilization(M, K, N, R, C, ss), 4),
                         "vs_scalesim": model - ss,
                         "folds": fold_counts(M, K, N, R, C, df, cfg.mac.max_safe_k).folds})
    if bar is not None:
        bar.close()
    return rows


# ---------------------------------------------------------------------------------------
# Area

AREA_DESIGNS = (
    # name, dataflow, mac, flow, double buffer (fold overlap hardware)
    ("OS, gate-level default MAC", "os", MacConfig(), "synth", False),
    ("OS, behavioural MAC (* and +)", "os", MacConfig(multiplier="behavioral"),
     "synth -booth", False),
    ("OS + fold overlap (drain register), gate-level MAC", "os", MacConfig(), "synth", True),
    ("OS + fold overlap (drain register), behavioural MAC", "os",
     MacConfig(multiplier="behavioral"), "synth -booth", True),
    ("WS compact (no shadow weights), gate-level MAC", "ws", MacConfig(), "synth", False),
    ("WS compact (no shadow weights), behavioural MAC", "ws",
     MacConfig(multiplier="behavioral"), "synth -booth", False),
    ("WS + shadow weights (fold overlap, split), gate-level MAC", "ws", MacConfig(), "synth",
     True),
    ("WS + shadow weights (fold overlap, split), behavioural MAC", "ws",
     MacConfig(multiplier="behavioral"), "synth -booth", True),
)


def measure_area(R=AREA_ARRAY, C=AREA_ARRAY, designs=AREA_DESIGNS, *, processes=None,
                 progress=True, executor=None):
    """Transistors of each design as an R x C array (hierarchical Verilog, flattened by
    the flow) and as one PE alone; per PE = array / (R*C)."""
    from sim.flow_calls import synthesize_jobs
    jobs = []
    for _, df, mac, flow, db in designs:
        jobs.append({"verilog": array_verilog(R, C, df, mac, double_buffer=db),
                     "top": "systolic_array", "flow": flow})
        jobs.append({"verilog": pe_verilog(mac, df, double_buffer=db), "top": "pe",
                     "flow": flow})
    bar = _bar(len(jobs), f"array bench: yosys area ({R}x{C} arrays)", progress)
    t0 = time.perf_counter()
    results = synthesize_jobs(jobs, processes=processes, ice40=False, executor=executor,
                              progress=lambda r: _tick(bar))
    if bar is not None:
        bar.close()
    rows = []
    for i, (name, df, mac, flow, db) in enumerate(designs):
        arr, pe = results[2 * i], results[2 * i + 1]
        rows.append({"design": name, "dataflow": df, "mac": mac.slug, "flow": flow,
                     "fold_overlap_hardware": db,
                     "array": f"{R}x{C}", "array_transistors": arr.transistors,
                     "per_pe": round(arr.transistors / (R * C), 1),
                     "array_flops": arr.flops, "array_depth": arr.depth,
                     "pe_alone_transistors": pe.transistors, "pe_alone_flops": pe.flops,
                     "pe_alone_depth": pe.depth, "synth_seconds": arr.seconds,
                     "cached": arr.cached})
    return rows, round(time.perf_counter() - t0, 1)


def overlap_cost(area, util):
    """Fold overlap per dataflow: per-PE area of the second register (OS drain, WS
    shadow weights) against the cycles it saves, per benchmarked shape."""
    by = {(a["dataflow"], a["fold_overlap_hardware"], a["flow"]): a for a in area}
    out, gains = [], []
    for df in ("os", "ws"):
        for flow in ("synth", "synth -booth"):
            plain, db = by.get((df, False, flow)), by.get((df, True, flow))
            if plain and db:
                out.append({"dataflow": df, "flow": flow, "per_pe_without": plain["per_pe"],
                            "per_pe_with": db["per_pe"],
                            "area_increase": round(db["per_pe"] / plain["per_pe"] - 1, 4)})
        for u in util:
            if u["dataflow"] != df or u["fold_overlap"]:
                continue
            ov = next(x for x in util if x["shape"] == u["shape"] and x["dataflow"] == df
                      and x["fold_overlap"])
            gains.append({"dataflow": df, "shape": u["shape"],
                          "cycles_without": u["model_cycles"],
                          "cycles_with": ov["model_cycles"],
                          "utilization_without": u["utilization"],
                          "utilization_with": ov["utilization"]})
    return {"area": out, "utilization": gains}


# ---------------------------------------------------------------------------------------
# The bench

def _load():
    try:
        import os
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def run_array_bench(outdir, progress=True, *, command=DEFAULT_COMMAND, build_root=None,
                    simulators=None, executor=None):
    """Run every part and write ``outdir/array.json`` and ``outdir/array.md``; returns
    the JSON data. ``simulators``: subset of ("verilator", "icarus", "amaranth").
    ``executor``: where the area syntheses and the utilization part's RTL runs go
    (default local pools); the speed part always runs here, alone, since it measures
    this machine."""
    from sim.runner import available_simulators
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    present = set(available_simulators()) | {"amaranth"}
    sims = [s for s in (simulators or ("verilator", "icarus", "amaranth")) if s in present]
    timings = {}

    t = time.perf_counter()
    gen = generation_table(progress=progress)
    timings["generation"] = round(time.perf_counter() - t, 1)

    t = time.perf_counter()
    speed = []
    bar = _bar(len(sims), f"array bench: sim speed {SIM_ARRAY}x{SIM_ARRAY}", progress)
    for s in sims:
        if s == "verilator":
            speed.append(measure_sim_speed(s, shape=(64, 64, 64), count=16,
                                           build_root=build_root))
        elif s == "icarus":
            speed.append(measure_sim_speed(s, shape=(64, 64, 64), count=1,
                                           build_root=build_root))
        else:
            speed.append(measure_sim_speed(s, shape=(16, 16, 16), count=1))
        _tick(bar, sim=s)
    if bar is not None:
        bar.close()
    timings["sim_speed"] = round(time.perf_counter() - t, 1)

    t = time.perf_counter()
    rtl_sim = "verilator" if "verilator" in sims else ("icarus" if "icarus" in sims else None)
    util = utilization_table(simulator=rtl_sim, build_root=build_root, progress=progress,
                             rtl_max_macs=RTL_MAX_MACS if rtl_sim == "verilator" else 16 ** 3,
                             executor=executor)
    timings["utilization"] = round(time.perf_counter() - t, 1)

    area, area_s = measure_area(progress=progress, executor=executor)
    timings["area"] = area_s
    timings["total"] = round(time.perf_counter() - start, 1)

    os_gate = area[0]
    big = next((u for u in util if (u["shape"], u["dataflow"], u["fold_overlap"]) ==
                ("x".join(map(str, RTL_ALWAYS[0])), *RTL_ALWAYS[1:])), None)
    multi = [u for u in util if u["folds"] > 1]
    data = {
        "command": command,
        "versions": tool_versions(simulators=True, yosys=True), "seconds": timings,
        "generation": gen, "sim_speed": speed, "utilization": util, "area": area,
        "fold_overlap_cost": overlap_cost(area, util),
        "area_target": {"per_pe_max": AREA_TARGET, "per_pe": os_gate["per_pe"],
                        "met": os_gate["per_pe"] <= AREA_TARGET},
        "scalesim_target": {
            "multi_fold_rows": len(multi),
            "multi_fold_at_or_below": sum(u["vs_scalesim"] <= 0 for u in multi),
            "single_fold_rows": len(util) - len(multi),
            "single_fold_plus_one": sum(u["vs_scalesim"] == 1 for u in util
                                        if u["folds"] == 1),
            "met": all(u["vs_scalesim"] <= (1 if u["folds"] == 1 else 0) for u in util
                       if u["fold_overlap"]),
            "note": "SCALE-Sim's formula ends with -1: it counts the index of the last "
                    "cycle (one MAC on a 1x1 array: 0 cycles); a single fold here takes "
                    "that + 1 because every PE output is a register"},
        "utilization_target": {"shape": "512x512x512 OS fold overlap, 16x16", "min": 0.97,
                               "utilization": big and big["utilization"],
                               "rtl_cycles": big and big["rtl_cycles"],
                               "met": bool(big and big["rtl_cycles"] and
                                           big["utilization"] >= 0.97)},
        "sim_speed_target": {"verilator_cycles_per_s_min": 20000,
                             "met": any(r["simulator"] == "verilator" and
                                        r["cycles_per_s"] >= 20000 for r in speed),
                             "met_cpu": any(r["simulator"] == "verilator" and
                                            (r["cpu_cycles_per_s"] or 0) >= 20000
                                            for r in speed)},
        "load_average": _load(),
    }
    write_json(outdir / "array.json", data)
    write_atomic(outdir / "array.md", _markdown(data))
    return data


def _markdown(d):
    cmd = d["command"]
    v = d["versions"]
    by = f"(produced by `{cmd}`)"
    md = ["# Systolic array benchmark", "",
          f"Every number on this page was produced by `{cmd}` "
          f"(total {d['seconds']['total']:.0f} s; parts: "
          + ", ".join(f"{k} {s:.0f} s" for k, s in d["seconds"].items() if k != "total")
          + ").", "",
          "Tools: " + ", ".join(f"{k} {v[k]}" for k in v if v[k]) + ".", ""]

    md += ["## Verilog generation vs array size", "",
           f"Square OS arrays, default MAC {by}. *Hierarchical*: `hdl.array.array_verilog` "
           "(PE emitted once as module `pe`, top with generate loops). *Flat*: Amaranth's "
           "`verilog.convert` of one Elaboratable holding R*C PE submodules "
           "(`hdl.array_flat.AmaranthArray`).", ""]
    rows = []
    for g in d["generation"]:
        h, f = g["hierarchical"], g["flat"]
        rows.append([f"{g['R']}x{g['R']}", h["seconds"], h["bytes"],
                     f["seconds"] if f else None, f["bytes"] if f else None,
                     g["flat_skipped"] or ""])
    md += [markdown_table(["array", "hier. s", "hier. bytes", "flat s", "flat bytes", "note"],
                          rows), ""]

    md += [f"## Simulation speed, {SIM_ARRAY}x{SIM_ARRAY} OS array {by}", "",
           "Cycles the bench played (incl. the short idle tail) per wall-clock second of "
           "the play loop (builds excluded; `build s` is the one-off build, from the build "
           "stamp if the build was cached, or, for amaranth.sim, elaboration). `CPU cycles/s` "
           "divides by the simulator process' "
           "CPU time instead, which a loaded machine distorts far less (load average at "
           f"the end of the run: {d['load_average']}). Each GEMM is checked against numpy "
           "and its cycle count against the model.", ""]
    rows = [[r["simulator"], r["gemm"], r["gemms"], r["cycles"], r["seconds"],
             r["cycles_per_s"], r["cpu_cycles_per_s"], r["build_seconds"]]
            for r in d["sim_speed"]]
    md += [markdown_table(["simulator", "GEMM", "count", "cycles", "s", "cycles/s",
                           "CPU cycles/s", "build s"], rows), "",
           f"Target >= 20000 cycles/s on Verilator: wall clock "
           f"**{'met' if d['sim_speed_target']['met'] else 'not met'}**, CPU time "
           f"**{'met' if d['sim_speed_target']['met_cpu'] else 'not met'}**.", ""]

    md += [f"## Utilization vs SCALE-Sim, {SIM_ARRAY}x{SIM_ARRAY} {by}", "",
           "utilization = M*K*N / (R*C*cycles). `model` = `sim.models.cycles.model_cycles`; "
           "`RTL` = cycles measured in simulation (shapes up to 64^3 MACs; asserted equal "
           "to the model); SCALE-Sim = its analytical formula (no fold overlap, P = 0).", ""]
    rows = [[u["shape"], u["dataflow"].upper(), u["fold_overlap"], u["model_cycles"],
             u["rtl_cycles"], u["scalesim_cycles"], u["vs_scalesim"], u["utilization"],
             u["scalesim_utilization"]] for u in d["utilization"]]
    md += [markdown_table(["M x K x N", "dataflow", "overlap", "model", "RTL", "SCALE-Sim",
                           "model - SCALE-Sim", "util", "SCALE-Sim util"], rows), ""]
    st, ut = d["scalesim_target"], d["utilization_target"]
    md += [f"RTL cycles <= SCALE-Sim's: {st['multi_fold_at_or_below']} of "
           f"{st['multi_fold_rows']} multi-fold rows at or below (with fold overlap: all "
           f"{'met' if st['met'] else 'NOT met'}); {st['single_fold_plus_one']} of "
           f"{st['single_fold_rows']} single-fold rows are SCALE-Sim + 1: {st['note']}.", "",
           f"Utilization on {ut['shape']}: {ut['utilization']} (RTL cycles "
           f"{ut['rtl_cycles']}) against >= {ut['min']}: "
           f"**{'met' if ut['met'] else 'not met'}**.", ""]

    t = d["area_target"]
    md += [f"## Area, {AREA_ARRAY}x{AREA_ARRAY} arrays {by}", "",
           "`hdl.flows.synth.synthesize` (Yosys "
           f"`{cmos_flow().replace('synth', 'synth [-booth]', 1)}`) on the hierarchical "
           "Verilog; `flatten` runs "
           "before `synth`, so the count covers all PEs (`per PE` = array / PEs; edge "
           "PEs lose their unused pass-through flops, hence slightly below `PE alone`).", ""]
    rows = [[a["design"], a["flow"], a["array_transistors"], a["per_pe"], a["array_flops"],
             a["array_depth"], a["pe_alone_transistors"], a["pe_alone_flops"]]
            for a in d["area"]]
    md += [markdown_table(["design", "flow", "array transistors", "per PE", "array flops",
                           "depth", "PE alone", "PE flops"], rows), "",
           f"Target <= {t['per_pe_max']} transistors per PE (OS, default MAC, no fold "
           f"overlap): {t['per_pe']} -> **{'met' if t['met'] else 'not met'}**.", ""]
    fo = d["fold_overlap_cost"]
    md += [f"## Fold overlap: area against utilization {by}", "",
           "OS: the compact PE drains finished sums through its accumulator, so the next "
           "tile waits for the drain (K + min(R, C) cycles per tile); fold overlap adds a "
           "W-bit drain register per PE so the drain runs under the next tile "
           "(max(K, min(R, C)) per tile). WS: the compact PE's weights are its shift "
           "chain, so a column's next weights wait for its last activation (2R + M - 2 "
           "cycles per fold); fold overlap adds shadow weights and a swap flag per PE "
           "(max(M, 2R - 1) per fold).", ""]
    md += [markdown_table(["dataflow", "flow", "per PE without", "per PE with",
                           "area increase"],
                          [[a["dataflow"].upper(), a["flow"], a["per_pe_without"],
                            a["per_pe_with"], f"{a['area_increase']:+.1%}"]
                           for a in fo["area"]]), ""]
    md += [markdown_table(["dataflow", "M x K x N", "cycles without", "cycles with",
                           "util without", "util with"],
                          [[g["dataflow"].upper(), g["shape"], g["cycles_without"],
                            g["cycles_with"], g["utilization_without"],
                            g["utilization_with"]] for g in fo["utilization"]]), ""]
    return "\n".join(md)
