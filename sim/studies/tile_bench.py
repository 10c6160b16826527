"""``systolic bench --only tile``: the accelerator tile (:mod:`hdl.tile`) from memory.

* from memory: 64x64x64 on the 16x16 OS and WS tiles (with and without fold overlap)
  (banks wide enough: one 64-bit line per edge vector) in RTL (Icarus): cycles against
  the bare array's model (target <= 1.02x), C == numpy, SRAM access counters ==
  :mod:`sim.models.tile`; 512x512x512 from the model;
* from memory on the native path (:func:`native_from_memory`, Verilator, the host
  port only): 64^3 and 512^3 on the same four 16x16 tiles, in RTL;
* bandwidth sweep in RTL on the 4x4 tile, where the feeders stall: RTL cycles == model
  on every point; the same sweep on the 16x16 tile from the model, plotted as
  utilization against the A+B bytes per cycle the banks deliver;
* area: the tile's logic (feeders, collector, controller; no memories, no counters)
  next to the array's, in transistors (Yosys CMOS flow) and Nangate45 um^2.
"""
import time

import numpy as np

from hdl.array import ArrayConfig, array_verilog
from hdl.emit import write_atomic
from hdl.mac import MacConfig
from hdl.tile import TileConfig, logic_verilog, LOGIC_TOP
from sim.models.cycles import model_cycles, utilization
from sim.models.tile import GemmCommand, tile_cycles
from sim.studies.tables import markdown_table, write_json

__all__ = ["run_tile_bench", "tile_area"]

DEFAULT_COMMAND = "systolic bench --only tile"
TARGET_CYCLES = 1.02
TARGET_AREA = 0.10
# Quoted, not measured here: CACTI through AccelForge's HWComponents, 45 nm.
SRAM_CITE = {"source": "CACTI via AccelForge HWComponents (as quoted in issue 20)",
             "size": "8 KB", "width_bits": 64, "read_pj": 6.1, "node_nm": 45}
SWEEP_WIDTHS_4 = (1, 2, 3, 4, 6, 8, 16)
SWEEP_WIDTHS_16 = (4, 8, 12, 16, 24, 32, 48, 64)


def _cfg(R, width, dataflow="os", overlap=False, **kw):
    return TileConfig(array=ArrayConfig(R, R, dataflow, MacConfig(), fold_overlap=overlap),
                      width=width, **kw)


def from_memory(build_root=None):
    """64^3 on the 16x16 OS and WS tiles in RTL; 512^3 from the model."""
    rows = []
    for df, overlap in (("os", False), ("os", True), ("ws", False), ("ws", True)):
        rows += _from_memory(df, build_root, overlap)
    return rows


def _from_memory(df, build_root, overlap=False):
    from sim.drivers.tile import run_tile_gemm
    cfg = _cfg(16, 64, df, overlap=overlap, depth=512)   # OS: skewed blocks, 79 lines
    rng = np.random.default_rng(20)
    A, B = rng.integers(-8, 8, (64, 64)), rng.integers(-8, 8, (64, 64))
    t0 = time.monotonic()
    run = run_tile_gemm(A, B, cfg, build_root=build_root)
    m = run.model
    name = f"16x16 {df.upper()}" + (" fold overlap" if overlap else "")
    rows = [{"gemm": "64x64x64", "array": name, "source": "RTL (icarus)",
             "cycles": run.cycles, "model_cycles": m.cycles, "bare_cycles": m.bare_cycles,
             "ratio": round(run.cycles / m.bare_cycles, 4),
             "matches_numpy": bool(np.array_equal(run.C, A @ B)),
             "accesses_match_model": run.counters == {
                 "a_reads": m.a_reads, "b_reads": m.b_reads, "c_reads": m.c_reads,
                 "c_writes": m.c_writes},
             **{k: m.as_dict()[k] for k in ("a_reads", "b_reads", "c_reads", "c_writes")},
             "seconds": round(time.monotonic() - t0, 1)}]
    big = _cfg(16, 64, df, overlap=overlap, depth=32768, c_depth=16384)
    K = 511 if df == "os" else 512                         # OS: K <= 511, one pass
    mb = tile_cycles(GemmCommand(512, K, 512), big)
    rows.append({"gemm": f"512x{K}x512", "array": name, "source": "model",
                 "cycles": mb.cycles, "model_cycles": mb.cycles,
                 "bare_cycles": mb.bare_cycles, "ratio": round(mb.cycles / mb.bare_cycles, 4),
                 "matches_numpy": None, "accesses_match_model": None,
                 **{k: mb.as_dict()[k] for k in ("a_reads", "b_reads", "c_reads",
                                                 "c_writes")}, "seconds": 0})
    return rows


NATIVE_SHAPES = ((64, 64, 64), (512, 512, 512))


def native_from_memory(build_root=None, shapes=NATIVE_SHAPES, model="gate"):
    """64^3 and 512^3 on the 16x16 OS (with and without fold overlap) and WS tiles in
    RTL on the native path (:mod:`sim.native.tile`, Verilator): the host stream holds
    the LOADs of A and B, the command(s) and the STOREs of C. One tile per dataflow
    (A and B 16384 lines, C 16384 x 32 bits: 512^3 fits). The OS accumulator takes K <= 511 in
    one pass, so 512^3 on OS is two commands of K = 256, the second accumulating into C
    (as the bare array's model splits K); cycles and accesses are the commands' sums,
    against the bare array's model of the whole GEMM."""
    from sim.drivers.tile import run_tile_gemms
    rows = []
    for df, overlap in (("os", False), ("os", True), ("ws", False), ("ws", True)):
        cfg = _cfg(16, 64, df, overlap=overlap, depth=16384, c_depth=16384, c_width=32)
        name = f"16x16 {df.upper()}" + (" fold overlap" if overlap else "")
        for M, K, N in shapes:
            rng = np.random.default_rng(M)
            A, B = rng.integers(-8, 8, (M, K)), rng.integers(-8, 8, (K, N))
            parts = [(0, K)] if K <= cfg.max_k else [(0, K // 2), (K // 2, K)]
            jobs = [(A[:, a:b], B[a:b], GemmCommand(M, b - a, N, accumulate=i > 0), None)
                    for i, (a, b) in enumerate(parts)]
            t0 = time.monotonic()
            runs = run_tile_gemms(jobs, cfg, build_root=build_root, path="native",
                                  model=model)
            seconds = time.monotonic() - t0
            mac = cfg.array.mac
            bare = model_cycles(M, K, N, 16, 16, df, pipeline=mac.pipeline,
                                k_chunk=mac.max_safe_k, double_buffer=df == "ws" or overlap,
                                fold_overlap=overlap)
            names = ("a_reads", "b_reads", "c_reads", "c_writes")
            model_acc = {k: sum(getattr(r.model, k) for r in runs) for k in names}
            rtl_acc = {k: sum(r.counters[k] for r in runs) for k in names}
            cycles = sum(r.cycles for r in runs)
            info = runs[-1].extra["native"]
            rows.append({"gemm": f"{M}x{K}x{N}", "array": name,
                         "source": f"RTL (verilator native, {model})",
                         "commands": len(runs), "cycles": cycles,
                         "model_cycles": sum(r.model.cycles for r in runs),
                         "bare_cycles": bare, "ratio": round(cycles / bare, 4),
                         "matches_numpy": bool(np.array_equal(runs[-1].C, A @ B)),
                         "accesses_match_model": rtl_acc == model_acc, **rtl_acc,
                         "host_writes": sum(r.host_writes for r in runs),
                         "host_reads": sum(r.host_reads for r in runs),
                         "stream_bytes": info["stream_bytes"],
                         "player_cpu_seconds": round(info["cpu_seconds"], 1),
                         "build_seconds": round(info["build"].seconds, 1),
                         "seconds": round(seconds, 1)})
    return rows


def sweep_rtl(build_root=None):
    """The 4x4 tiles at A/B bank widths from 1 to 16 bits (16: no stall), 13x12x10."""
    from sim.drivers.tile import run_tile_gemms
    rng = np.random.default_rng(4)
    A, B = rng.integers(-8, 8, (13, 12)), rng.integers(-8, 8, (12, 10))
    out = []
    for df in ("os", "ws"):
        for w in SWEEP_WIDTHS_4:
            cfg = _cfg(4, w, df, depth=1024)
            run = run_tile_gemms([(A, B, None, None)], cfg, build_root=build_root)[0]
            out.append({"dataflow": df, "width": w, "bytes_per_cycle": cfg.sram_bytes,
                        "beats": f"{cfg.beats_a}/{cfg.beats_b}",
                        "rtl_cycles": run.cycles, "model_cycles": run.model.cycles,
                        "stalls": run.model.stalls, "match": run.cycles == run.model.cycles
                        and bool(np.array_equal(run.C, A @ B)),
                        "utilization": round(utilization(13, 12, 10, 4, 4, run.cycles), 4)})
    return out


def sweep_model(M=64, K=64, N=64):
    """Utilization of the 16x16 tile against the bytes per cycle A and B deliver."""
    out = []
    for df in ("os", "ws"):
        for w in SWEEP_WIDTHS_16:
            cfg = _cfg(16, w, df, c_depth=1024, depth=4096)
            t = tile_cycles(GemmCommand(M, K, N), cfg)
            out.append({"dataflow": df, "width": w, "bytes_per_cycle": cfg.sram_bytes,
                        "beats": f"{cfg.beats_a}/{cfg.beats_b}",
                        "cycles": t.cycles, "stalls": t.stalls,
                        "utilization": round(utilization(M, K, N, 16, 16, t.cycles), 4)})
    return out


SPLIT_WIDTHS = (4, 8, 16, 32, 64)


#: Jobs of different shapes per mode of the 32x32 split tile (M, K, N per sub-array).
SPLIT_MIXED = (("h2", ((20, 16, 32), (8, 48, 24))), ("v2", ((32, 32, 16), (5, 40, 9))),
               ("whole", ((24, 40, 40),)))


def split_from_memory(build_root=None):
    """Four 16^3 GEMMs on the 32x32 split WS tile (2x2 sub-arrays of 16x16) in RTL: in
    mode quad (one start) and in mode whole (four starts, one after another) on the same
    hardware, against the bare array's split and whole-array models; jobs of different
    shapes in modes h2, v2 and whole (:data:`SPLIT_MIXED`); and the speed-up of the split
    tile over the whole 32x32 tile at equal A+B bandwidth (model)."""
    from hdl.tile.split import SplitTileConfig
    from sim.drivers.schedule import four_gemms_comparison
    from sim.drivers.split_tile import SplitTileJob, run_split_tile
    from sim.models.split_tile import sub_job_cycles
    rng = np.random.default_rng(7)
    jobs = [(rng.integers(-8, 8, (16, 16)), rng.integers(-8, 8, (16, 16))) for _ in range(4)]
    cfg = SplitTileConfig(_cfg(16, 64, "ws", depth=512, c_depth=512))
    starts = [("quad", [SplitTileJob(A, B, k) for k, (A, B) in enumerate(jobs)])]
    starts += [("whole", [SplitTileJob(A, B, 0)]) for A, B in jobs]
    for mode, shapes in SPLIT_MIXED:
        starts.append((mode, [SplitTileJob(rng.integers(-8, 8, (M, K)),
                                           rng.integers(-8, 8, (K, N)), k)
                              for k, (M, K, N) in enumerate(shapes)]))
    t0 = time.monotonic()
    runs = run_split_tile(starts, cfg, build_root=build_root)
    ok = all(bool(np.array_equal(C_, E)) for r in runs for C_, E in zip(r.C, r.expected))
    exact = all(r.cycles == r.model_cycles and r.tile_done == {
        t: d for s in r.subs for t, d in s.tile_done.items()} and r.counters == {
        t: c for s in r.subs for t, c in s.counters.items()} for r in runs)
    cycles, whole_mem = runs[0].cycles, sum(r.cycles for r in runs[1:5])
    modes = [{"mode": mode, "jobs": [list(s.shape) for s in r.subs],
              "rtl_cycles": r.cycles, "model_cycles": r.model_cycles,
              "sub_cycles": [s.cycles for s in r.subs]}
             for (mode, _), r in zip(starts[5:], runs[5:])]
    bare = four_gemms_comparison(32, 16, (16, 16, 16), MacConfig())
    cmd = GemmCommand(16, 16, 16)
    sweep = []
    for w in SPLIT_WIDTHS:
        whole = _cfg(32, w, "ws", a_banks=4, b_banks=4, depth=4096, c_depth=1024)
        sub = _cfg(16, w, "ws", depth=4096)
        cw, cq = 4 * tile_cycles(cmd, whole).cycles, tile_cycles(cmd, sub).cycles
        # the split tile itself in mode whole (2x2 tiles, each its own banks of width w)
        cs = 4 * sub_job_cycles(GemmCommand(16, 16, 16, mode=1), SplitTileConfig(sub),
                                2, 2)[0]
        sweep.append({"width": w, "bytes_per_cycle": whole.sram_bytes,
                      "whole_cycles": cw, "split_cycles": cq,
                      "split_tile_whole_cycles": cs,
                      "speedup_same_tile": round(cs / cq, 3),
                      "speedup": round(cw / cq, 3),
                      "speedup_vs_bare_whole": round(bare["whole_sequential"] / cq, 3)})
    return {"rtl_cycles": cycles, "model_cycles": runs[0].model_cycles,
            "matches_numpy": ok, "exact": exact,
            "whole_mode_rtl_cycles": whole_mem,
            "whole_mode_model_cycles": sum(r.model_cycles for r in runs[1:5]),
            "speedup_same_tile": round(whole_mem / cycles, 3), "mixed": modes,
            "bare_quad": bare["quad"], "bare_whole_sequential": bare["whole_sequential"],
            "bare_speedup": round(bare["speedup"], 3),
            "speedup": round(bare["whole_sequential"] / cycles, 3),
            "kept": round(bare["whole_sequential"] / cycles / bare["speedup"], 3),
            "sweep": sweep, "seconds": round(time.monotonic() - t0, 1)}


def tile_area(R, dataflow="os", *, executor=None):
    """Transistors and Nangate45 um^2 of the R x R tile's logic and of its array."""
    from hdl.flows.liberty import liberty_area
    from sim.flow_calls import synthesize_jobs
    cfg = _cfg(R, 4 * R, dataflow, counters=False, c_depth=1024)
    logic = logic_verilog(cfg)
    arr = array_verilog(R, R, dataflow, MacConfig(), double_buffer=dataflow == "ws")
    res = synthesize_jobs([{"verilog": logic, "top": LOGIC_TOP, "flow": "synth"},
                           {"verilog": arr, "top": "systolic_array", "flow": "synth"}],
                          ice40=False, executor=executor)
    lib = [liberty_area(logic, LOGIC_TOP), liberty_area(arr, "systolic_array")]
    kind = "OS (compact PE)" if dataflow == "os" else "WS (shadow weights)"
    # Flops by part, counted from the design (not from the netlist). Skew lines: lane i
    # of a data edge delayed by i (4 bits; none when A and B are stored skewed), and the
    # shared flags (OS drain; WS valid, swap and weight enable) one tapped chain each.
    # Collector: OS, bank 0's up/down addresses and window position and a chain of
    # (address, position) per further bank; WS, one C address per lane.
    tri = R * (R - 1) // 2
    data = 0 if cfg.skewed else 4 * 2 * tri
    skew = data + (R - 1) * (1 if dataflow == "os" else 3)
    abits = (cfg.c_depth - 1).bit_length()
    if dataflow == "os":
        sbits = max(1, (cfg.drain - 1).bit_length())
        col = 2 * abits + sbits + (cfg.c_banks - 1) * (abits + sbits)
    else:
        col = cfg.c_banks * abits
    return {"array": f"{R}x{R} {kind}", "tile": cfg.slug,
            "logic_transistors": res[0].transistors, "array_transistors": res[1].transistors,
            "logic_flops": res[0].flops, "array_flops": res[1].flops,
            "skew_flops": skew, "collector_flops": col, "c_banks": cfg.c_banks,
            "logic_um2": lib[0]["area_um2"], "array_um2": lib[1]["area_um2"],
            "ratio_transistors": round(res[0].transistors / res[1].transistors, 4),
            "ratio_um2": round(lib[0]["area_um2"] / lib[1]["area_um2"], 4)}


def _plot(sweep, path, command):
    from sim.studies.plot import figure, save_figure
    fig, (ax,) = figure(1, width=6)
    for df in ("os", "ws"):
        pts = [p for p in sweep if p["dataflow"] == df]
        ax.plot([p["bytes_per_cycle"] for p in pts], [p["utilization"] for p in pts], "o-",
                label=f"16x16 {df.upper()} tile, 64x64x64")
    ax.axvline(16, color="0.6", ls=":", label="edge demand (16 B/cycle)")
    ax.set_xlabel("A + B scratchpad bytes per cycle")
    ax.set_ylabel("utilization (MACs / PE-cycles)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    save_figure(fig, path, f"`{command}`; sim.models.tile (RTL == model on the 4x4 sweep)")


def energy_rows(*, cache=True):
    """64x64x64 on the 16x16 OS and WS tiles: the array's energy from the gate-level
    energy flow (:mod:`hdl.flows.energy`, the bare array on the same GEMM: the feeders'
    stalls add no array switching when there are none, and there are none at one line
    per vector) and the scratchpads' from the model's exact access counts at the cited
    pJ per access (:func:`sim.models.tile.sram_energy_pj`); pJ per MAC each."""
    from sim.models.tile import sram_energy_pj
    from sim.studies.energy_study import array_energy
    rows = []
    for df in ("os", "ws"):
        cfg = _cfg(16, 64, df)
        rng = np.random.default_rng(20)
        A, B = rng.integers(-8, 8, (64, 64)), rng.integers(-8, 8, (64, 64))
        _, array_pj = array_energy(cfg.array, A, B, cache=cache)
        m = tile_cycles(GemmCommand(64, 64, 64), cfg)
        sram = {k: v / 64 ** 3 for k, v in sram_energy_pj(m, cfg).items()}
        rows.append({"gemm": "64x64x64", "array": f"16x16 {df.upper()}",
                     "array_pj_per_mac": round(array_pj, 4),
                     **{f"sram_{k}_pj_per_mac": round(v, 4) for k, v in sram.items()},
                     "total_pj_per_mac": round(array_pj + sram["total"], 4),
                     "sram_share": round(sram["total"] / (array_pj + sram["total"]), 3)})
    return rows


def _native_rows(build_root, shapes):
    """:func:`native_from_memory`, or a note where Verilator cannot build."""
    from sim.runner import SimulatorUnavailable, check_simulator
    try:
        check_simulator("verilator")
    except SimulatorUnavailable as e:
        return [], f"not run: {e}"
    t0 = time.monotonic()
    rows = native_from_memory(build_root, shapes)
    return rows, f"{time.monotonic() - t0:.0f} s"


def run_tile_bench(outdir, *, command=DEFAULT_COMMAND, build_root=None, executor=None,
                   native_shapes=NATIVE_SHAPES):
    """Run the tile bench into ``outdir`` (tile.json, tile.md, tile_bandwidth.png).
    ``native_shapes``: the GEMMs of :func:`native_from_memory` (Verilator)."""
    t0 = time.monotonic()
    native, native_note = _native_rows(build_root, native_shapes)
    mem = from_memory(build_root)
    rtl_sweep = sweep_rtl(build_root)
    model_sweep = sweep_model()
    split = split_from_memory(build_root)
    areas = [tile_area(4, executor=executor), tile_area(16, executor=executor),
             tile_area(4, "ws", executor=executor)]
    data = {"command": command, "from_memory": mem, "native": native,
            "native_note": native_note, "sweep_rtl_4x4": rtl_sweep,
            "sweep_model_16x16": model_sweep, "split": split, "area": areas,
            "sram": SRAM_CITE, "energy": energy_rows(),
            "targets": {
                "cycles_vs_bare": {"target": TARGET_CYCLES,
                                   "value": max(r["ratio"] for r in mem),
                                   "met": all(r["ratio"] <= TARGET_CYCLES for r in mem)},
                "native_vs_bare": {"target": TARGET_CYCLES,
                                   "value": max((r["ratio"] for r in native), default=None),
                                   "met": bool(native) and all(
                                       r["ratio"] <= TARGET_CYCLES and r["matches_numpy"]
                                       and r["accesses_match_model"]
                                       and r["cycles"] == r["model_cycles"]
                                       for r in native)},
                "sweep_rtl_equals_model": all(p["match"] for p in rtl_sweep),
                "split_speedup_kept": {"target": 0.9, "value": split["kept"],
                                       "met": split["kept"] >= 0.9},
                "logic_vs_array_16x16": {"target": TARGET_AREA,
                                         "value": areas[1]["ratio_transistors"],
                                         "met": areas[1]["ratio_transistors"] <= TARGET_AREA}},
            "seconds": round(time.monotonic() - t0, 1)}
    outdir.mkdir(parents=True, exist_ok=True)
    write_json(outdir / "tile.json", data)
    _plot(model_sweep, outdir / "tile_bandwidth.png", command)
    write_atomic(outdir / "tile.md", _markdown(data))
    return data


def _markdown(d):
    t = d["targets"]
    lines = ["# Tile bench: GEMMs from the tile's own memory", "",
             f"Produced by `{d['command']}` in {d['seconds']} s.", "",
             "## From memory vs the bare array", "",
             markdown_table(["GEMM", "array", "source", "cycles", "model", "bare model",
                             "ratio", "C == numpy", "accesses == model", "A reads",
                             "B reads", "C writes"],
                            [[r["gemm"], r["array"], r["source"], r["cycles"],
                              r["model_cycles"], r["bare_cycles"], f"{r['ratio']:.4f}",
                              r["matches_numpy"], r["accesses_match_model"], r["a_reads"],
                              r["b_reads"], r["c_writes"]] for r in d["from_memory"]]),
             "", f"Target <= {TARGET_CYCLES}x the bare array's model: "
                 f"**{'met' if t['cycles_vs_bare']['met'] else 'not met'}** "
                 f"({t['cycles_vs_bare']['value']}x).", "",
             "## From memory on the native path (Verilator, host port only)", "",
             f"The host stream holds the LOADs of A and B (bursts), the command(s) and "
             f"the STOREs of C; OS 512^3 is two commands of K = 256, the second "
             f"accumulating (the OS accumulator takes K <= 511 per pass). "
             f"Run time: {d['native_note']}.", "",
             markdown_table(["GEMM", "array", "commands", "RTL cycles", "model", "bare model",
                             "ratio", "C == numpy", "accesses == model", "A reads",
                             "B reads", "C reads", "C writes", "host writes / reads",
                             "stream bytes", "player CPU s", "build s", "run s"],
                            [[r["gemm"], r["array"], r["commands"], r["cycles"],
                              r["model_cycles"], r["bare_cycles"], f"{r['ratio']:.4f}",
                              r["matches_numpy"], r["accesses_match_model"], r["a_reads"],
                              r["b_reads"], r["c_reads"], r["c_writes"],
                              f"{r['host_writes']} / {r['host_reads']}", r["stream_bytes"],
                              r["player_cpu_seconds"], r["build_seconds"], r["seconds"]]
                             for r in d.get("native", [])]),
             "", f"Target <= {TARGET_CYCLES}x the bare array's model, C == numpy, accesses "
                 f"== model (native rows): "
                 f"**{'met' if t['native_vs_bare']['met'] else 'not met'}** "
                 f"({t['native_vs_bare']['value']}x).", "",
             "## Bandwidth sweep, 4x4 tiles, 13x12x10, RTL (icarus)", "",
             markdown_table(["dataflow", "bank width", "A+B B/cycle", "lines/vector A/B",
                             "RTL cycles", "model", "stalls", "utilization",
                             "RTL == model, C == numpy"],
                            [[p["dataflow"], p["width"], p["bytes_per_cycle"], p["beats"],
                              p["rtl_cycles"],
                              p["model_cycles"], p["stalls"], p["utilization"], p["match"]]
                             for p in d["sweep_rtl_4x4"]]),
             "", "## Bandwidth sweep, 16x16 tiles, 64x64x64, model", "",
             markdown_table(["dataflow", "bank width", "A+B B/cycle", "lines/vector A/B",
                             "cycles", "stalls", "utilization"],
                            [[p["dataflow"], p["width"], p["bytes_per_cycle"], p["beats"],
                              p["cycles"],
                              p["stalls"], p["utilization"]] for p in d["sweep_model_16x16"]]),
             "", "![utilization vs bandwidth](tile_bandwidth.png)", "",
             "## Four 16x16x16 GEMMs on the 32x32 split WS tile (2x2 sub-arrays)", "",
             f"RTL (icarus): **{d['split']['rtl_cycles']}** cycles from one command to "
             f"done (model {d['split']['model_cycles']}), C == numpy: "
             f"{d['split']['matches_numpy']}. Bare array: quad {d['split']['bare_quad']}, "
             f"whole one after another {d['split']['bare_whole_sequential']} "
             f"({d['split']['bare_speedup']}x); from memory "
             f"{d['split']['bare_whole_sequential']} / {d['split']['rtl_cycles']} = "
             f"**{d['split']['speedup']}x**, {d['split']['kept']:.0%} of the bare "
             f"speed-up (target >= 90%). The same four in mode whole on the same split "
             f"tile (four starts): {d['split']['whole_mode_rtl_cycles']} cycles (model "
             f"{d['split']['whole_mode_model_cycles']}): "
             f"**{d['split']['speedup_same_tile']}x** for quad; cycles, tile_done and "
             f"access counters == model: {d['split']['exact']}.", "",
             "Jobs of different shapes, one start each (RTL == model):", "",
             markdown_table(["mode", "jobs (MxKxN per sub-array)", "RTL cycles", "model",
                             "per sub-array (model)"],
                            [[r["mode"], ", ".join("x".join(map(str, j)) for j in r["jobs"]),
                              r["rtl_cycles"], r["model_cycles"],
                              ", ".join(map(str, r["sub_cycles"]))]
                             for r in d["split"].get("mixed", [])]), "",
             "At equal A+B bandwidth (whole: 4 banks per memory; split: 1 per sub-array "
             "and memory, same width), model:", "",
             markdown_table(["bank width", "A+B B/cycle", "whole tile, 4 GEMMs",
                             "split tile", "split vs whole", "split vs bare whole",
                             "split tile in mode whole", "quad vs its mode whole"],
                            [[p["width"], p["bytes_per_cycle"], p["whole_cycles"],
                              p["split_cycles"], p["speedup"], p["speedup_vs_bare_whole"],
                              p.get("split_tile_whole_cycles", "-"),
                              p.get("speedup_same_tile", "-")]
                             for p in d["split"]["sweep"]]), "",
             "## Logic area (feeders + collector + controller) vs the array", "",
             markdown_table(["array", "logic transistors", "array transistors", "ratio",
                             "logic um^2", "array um^2", "ratio um^2", "logic flops",
                             "of which skew lines", "collector addresses", "C banks"],
                            [[a["array"], a["logic_transistors"], a["array_transistors"],
                              a["ratio_transistors"], a["logic_um2"], a["array_um2"],
                              a["ratio_um2"], a["logic_flops"], a["skew_flops"],
                              a["collector_flops"], a["c_banks"]] for a in d["area"]]),
             "", f"Target <= {TARGET_AREA:.0%} of the 16x16 array's transistors: "
                 f"**{'met' if t['logic_vs_array_16x16']['met'] else 'not met'}** "
                 f"({t['logic_vs_array_16x16']['value']:.1%}).", "",
             f"SRAM macros are not synthesized: per access, {d['sram']['size']} "
             f"{d['sram']['width_bits']}-bit read {d['sram']['read_pj']} pJ at "
             f"{d['sram']['node_nm']} nm ({d['sram']['source']}; quoted, not measured).", "",
             "## Energy per MAC from memory (64x64x64)", "",
             "The array from the gate-level energy flow (unit delay, Nangate45 1.1 V); the "
             "scratchpads from the model's exact access counts at the cited pJ per 64 bits "
             "(0.9 V-era CACTI figure, not scaled), pJ per MAC:", "",
             markdown_table(["array", "array", "SRAM A", "SRAM B", "SRAM C reads",
                             "SRAM C writes", "total", "SRAM share"],
                            [[r["array"], r["array_pj_per_mac"], r["sram_a_reads_pj_per_mac"],
                              r["sram_b_reads_pj_per_mac"], r["sram_c_reads_pj_per_mac"],
                              r["sram_c_writes_pj_per_mac"], r["total_pj_per_mac"],
                              f"{r['sram_share']:.0%}"] for r in d.get("energy", [])]), ""]
    return "\n".join(lines)
