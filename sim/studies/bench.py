"""``make bench``: area benchmarks written to ``build/bench/*.json`` and ``*.md``.

mac: every MAC variant (multiplier x adder x fused x pipeline x signedness, W=16) and
the behavioural MAC through each Yosys flow, plus the external PyRTL peer, all through
the same flow; the target (best gate-level signed MAC <= 0.90x the transistors of
Yosys's best behavioural flow at no greater depth) is evaluated from these numbers.

array: :mod:`sim.studies.array_bench`. numerics: :mod:`sim.studies.numerics_bench` (int4
against FP4). split: :mod:`sim.studies.split_bench` (area overhead of the
splittable 32x32 array, RTL throughput of split modes, utilization sweep, PNG plots).
sim: :mod:`sim.studies.sim_bench` (simulation speed on both paths, both
simulators, gate-level and twin).
workload: :mod:`sim.studies.workload_bench` (language models on whole and split arrays).
tile: :mod:`sim.studies.tile_bench` (GEMMs from the tile's own memory, bandwidth sweep,
logic area of the tile against the array).
gating: :mod:`sim.studies.gating_bench` (clock-gating area, timing against OpenSTA).
energy: :mod:`sim.studies.energy_bench` (pJ per MAC from gate-level switching, Nangate45).
precision: :mod:`sim.studies.precision_bench` (int8 work on the fused 4-bit array).
"""
import platform
import sys
import time

from hdl.emit import write_atomic
from hdl.flows.synth import cmos_flow, synthesize, yosys_version
from sim.studies.area import (all_mac_configs, area_rows, best_behavioral, AREA_HEADERS,
                      flows_for)
from sim.studies.tables import markdown_table, write_json

TARGET_RATIO = 0.90
BENCHES = ("mac", "array", "split", "numerics", "sim", "workload", "tile", "gating",
           "energy", "precision")


def _mac_target(results):
    """Where the best gate-level signed W=16 P=0 MAC lands against Yosys's best."""
    ref = best_behavioral(results)[(True, 16, 0)]
    ours = [(c, r) for c, r in results
            if not c.behavioral and c.signed and c.acc_width == 16 and c.pipeline == 0]
    fits = [(c, r) for c, r in ours if r.depth <= ref.depth]
    best_cfg, best = min(fits or ours, key=lambda cr: (cr[1].transistors, cr[1].depth))
    ratio = best.transistors / ref.transistors
    return {
        "reference": {"flow": ref.flow, "transistors": ref.transistors, "depth": ref.depth},
        "best": {"design": best_cfg.slug, "transistors": best.transistors,
                 "depth": best.depth, "ratio": round(ratio, 4)},
        "target_ratio": TARGET_RATIO,
        "met": ratio <= TARGET_RATIO and best.depth <= ref.depth,
    }


def _peer_row():
    """The PyRTL peer (rtllib signed tree multiplier + adder), same flow."""
    try:
        from hdl.flows.peers import pyrtl_mac_verilog, pyrtl_mac_equivalent
    except ImportError as e:                       # pyrtl is a dev extra
        return None, f"PyRTL peer skipped: {e}"
    res = synthesize(pyrtl_mac_verilog(acc_width=16), top="mac", flow="synth")
    equivalent = pyrtl_mac_equivalent(acc_width=16)
    ice = res.ice40 or {}
    row = ["PyRTL rtllib signed tree MAC, signed W=16 P=0", res.flow, res.transistors,
           None, res.depth, res.cells, res.flops, ice.get("lut4"), ice.get("carry"),
           ice.get("dff")]
    note = ("PyRTL peer: formally " + ("equivalent to" if equivalent else
            "NOT equivalent to") + " the behavioural MAC (yosys miter + sat).")
    return (row, res, equivalent), note


def bench_mac(outdir, progress, executor=None):
    configs = []
    for signed in (True, False):
        configs += all_mac_configs(signed=signed, acc_width=16, pipelines=(0, 1, 2))
    from sim.studies.area import synthesize_configs
    start = time.monotonic()
    results = synthesize_configs(configs, progress=progress, executor=executor)
    target = _mac_target(results)
    rows = area_rows(results)
    peer, peer_note = _peer_row()
    if peer:
        rows.append(peer[0])
    seconds = time.monotonic() - start
    version = yosys_version()
    command = "make bench  (systolic bench --only mac)"
    flow = (f"`{cmos_flow().replace('synth', '{flow}', 1)}` (depth from `ltp -noff`), "
            "iCE40 `synth_ice40 -top mac`")
    data = {
        "command": command, "yosys": version, "flow": flow,
        "host": {"python": sys.version.split()[0], "machine": platform.machine()},
        "seconds": round(seconds, 1),
        "target": target,
        "results": [{"slug": c.slug, "config": c.__dict__, **r.to_json()}
                    for c, r in results],
        "peer": ({"name": "pyrtl", "equivalent": peer[2], **peer[1].to_json()}
                 if peer else None),
    }
    write_json(outdir / "mac.json", data)
    t = target
    md = [
        "# MAC area benchmark", "",
        f"Produced by `{command}` with {version}. Flow: {flow}.", "",
        "## Target", "",
        f"Best gate-level signed MAC (W=16, P=0) at depth <= the reference: "
        f"**{t['best']['design']}**, {t['best']['transistors']} transistors, depth "
        f"{t['best']['depth']}, **{t['best']['ratio']:.3f}x** Yosys's best behavioural "
        f"flow (`{t['reference']['flow']}`: {t['reference']['transistors']} transistors, "
        f"depth {t['reference']['depth']}). Target <= {TARGET_RATIO:.2f}x: "
        f"**{'met' if t['met'] else 'not met'}**.", "",
        "## All variants", "",
        markdown_table(AREA_HEADERS, rows), "",
        peer_note, "",
    ]
    write_atomic(outdir / "mac.md", "\n".join(md))
    return target


def run_bench(outdir, *, only=None, executor=None, skip_slow=False, sim_part="all",
              resume=False):
    """Run the ``only`` benches (default all) into ``outdir``; their syntheses go to
    ``executor`` (a :mod:`sim.execute` executor; default each bench's own local pool);
    ``skip_slow``: the sim bench skips its slowest combinations (never a target row)."""
    from tqdm import tqdm
    outdir.mkdir(parents=True, exist_ok=True)
    for name in only or BENCHES:
        if name == "mac":
            total = sum(len(flows_for(c)) for s in (True, False)
                        for c in all_mac_configs(signed=s, pipelines=(0, 1, 2)))
            with tqdm(total=total, desc="mac bench", unit="synth", file=sys.stderr) as bar:
                target = bench_mac(outdir, lambda _r: bar.update(), executor)
            print(f"mac: best {target['best']['design']} = {target['best']['ratio']:.3f}x "
                  f"of {target['reference']['flow']} -> {outdir}/mac.md")
        elif name == "array":
            from sim.studies.array_bench import run_array_bench
            run_array_bench(outdir, progress=True, executor=executor,
                            command="make bench  (systolic bench --only array)")
            print(f"array: -> {outdir}/array.md")
        elif name == "split":
            from sim.studies.split_bench import run_split_bench
            data = run_split_bench(outdir, executor=executor,
                                   command="make bench  (systolic bench --only split)")
            s = data["summary"]
            four = f"; four 16^3 GEMMs quad vs whole {s['four_gemms']['speedup']:.2f}x" if s else ""
            print(f"split: {outdir}/split.md{four}")
        elif name == "numerics":
            from sim.studies.numerics_bench import run_numerics_bench
            d = run_numerics_bench(outdir, executor=executor)
            t, a = d["target"], d["array_target"]
            print(f"numerics: best FP4 MAC {t['best']['design']} = {t['ratio']:.3f}x of "
                  f"{t['behavioural']['flow']}; FP4 8x8 OS array {a['ratio']:.3f}x int4 "
                  f"per PE -> {outdir}/numerics.md")
        elif name == "sim":
            from sim.studies.sim_bench import run_sim_bench
            run_sim_bench(outdir, skip_slow=skip_slow, part=sim_part, resume=resume,
                          command="systolic bench --only sim"
                                  + (" --skip-slow" if skip_slow else "")
                                  + ("" if sim_part == "all" else f" --sim-part {sim_part}")
                                  + (" --resume" if resume else ""))
            print(f"sim: -> {outdir}/sim.md")
        elif name == "workload":
            from sim.studies.workload_bench import run_workload_bench
            data = run_workload_bench(outdir, executor=executor,
                                      command="make bench  (systolic bench --only workload)")
            worst = min(d["model"]["speedup"] for d in data["compare"] if "target" in d)
            print(f"workload: {outdir}/workload.md; decode split vs whole >= {worst:.2f}x")
        elif name == "tile":
            from sim.studies.tile_bench import run_tile_bench
            t = run_tile_bench(outdir, executor=executor)["targets"]
            print(f"tile: {outdir}/tile.md; 64^3 on 16x16 from memory "
                  f"{t['cycles_vs_bare']['value']}x the bare array, native 64^3 and 512^3 "
                  f"{t['native_vs_bare']['value']}x; logic "
                  f"{t['logic_vs_array_16x16']['value']:.1%} of the array")
        elif name == "gating":
            from sim.studies.gating_bench import run_gating_bench
            d = run_gating_bench(outdir, log=lambda m: print(m, file=sys.stderr))
            worst = max(max(r["um2_pct"], r["transistors_pct"]) for r in d["area"])
            print(f"gating: {outdir}/gating.md; gating area <= +{worst:.2f}%")
        elif name == "energy":
            from sim.studies.energy_bench import run_energy_bench
            data = run_energy_bench(outdir, command="systolic bench --only energy",
                                    log=lambda m: print(m, file=sys.stderr, flush=True))
            t = data["mac"]["target"]
            print(f"energy: best MAC {t['best']} {t['best_pj']:.3f} pJ = {t['ratio']:.3f}x "
                  f"behavioural -> {outdir}/energy.md")
        elif name == "precision":
            from sim.studies.precision_bench import run_precision_bench
            run_precision_bench(outdir)
            print(f"precision: -> {outdir}/precision.md")
    return 0
