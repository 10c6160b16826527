"""Split bench: ``build/bench/split.json``, ``split.md`` and ``split_*.png``.

Three parts on a 32x32 splittable weight-stationary array (:mod:`hdl.split`; the area
and four-GEMM parts again for output-stationary) with the default MAC (signed int4, W = 16, Dadda +
ripple, fused, P = 0):

* :func:`area_table` -- (a) transistors and cells of the splittable array against the
  unsplit ``systolic_array`` of the same size (Yosys, :func:`sim.drivers.split.
  split_area_overhead`), tiles 4, 8 and 16, both boundary styles; where the overhead
  goes (cell-type deltas: muxes, gates, flops), the extra edge-port bits, the config
  bits and what a register holding them would cost; the area targets;
* :func:`throughput_programs` / :func:`throughput_table` -- (b) four independent
  16x16x16 GEMMs on the 2x2 split (``quad``) against one after another on the whole
  array; GEMV (M = 1, K = N = 64): one GEMV on the whole array, the same GEMV cut into
  four column blocks on ``quad``, four independent GEMVs on ``quad`` and one after
  another on the whole array; a mixed batch of small odd shapes as the scheduler plans
  it (:func:`sim.drivers.split.plan_jobs`) against always-whole and always-finest. Every
  program runs in RTL (one simulator run), every result is checked against numpy and
  every job's and program's RTL cycles against the cycle model;
* :func:`utilization_sweep` -- (c) a batch of four n x n x n GEMMs for a sweep of n:
  utilization (MACs / (PEs x cycles)) of whole (one after another), ``quad``, finest
  (every tile its own sub-array) and planned, from the cycle model; the small sizes
  are also played in RTL (in the same simulator run as (b)).

Run it with ``systolic bench --only split`` (also part of ``systolic bench`` / ``make
bench``); every number in the Markdown names the command that produced it. Syntheses are
cached (``build/cache/synth``); a cold 32x32 synthesis takes about five minutes per design.
"""
import json
import sys
import time
from pathlib import Path

import numpy as np

from hdl.emit import write_atomic
from hdl.flows.synth import cmos_flow
from hdl.mac import MacConfig
from hdl.split import STYLES
from hdl.split import SplitConfig
from sim.models.program import SplitJob, program_cycles
from sim.drivers.schedule import compare_plans, plan_to_program, four_gemms_comparison
from sim.drivers.gemm import random_operands
from sim.batch import SimBatch, simulate_many
from sim.studies.split_area import split_area_jobs, split_area_overhead
from sim.studies.provenance import tool_versions
from sim.studies.tables import markdown_table, write_json

__all__ = ["run_split_bench", "area_table", "throughput_programs", "throughput_table",
           "utilization_sweep", "DEFAULT_COMMAND", "SIZE", "AREA_TILES", "AREA_TARGETS"]

DEFAULT_COMMAND = "systolic bench --only split"
SIZE = 32                                   # the array of every part
AREA_TILES = (4, 8, 16)
#: tile -> max transistor overhead in % (config register included): the area targets
AREA_TARGETS = {4: 1.0, 8: 0.5}
THROUGHPUT_TILE = 8                         # quad = 2x2 sub-arrays of 16x16 PEs
FOUR_GEMM = (16, 16, 16)
FOUR_TARGET = 5.0                           # >= 5x fewer cycles in RTL, quad vs whole
GEMV = (1, 64, 64)
MIXED = ((5, 7, 3), (13, 29, 7), (1, 64, 64), (17, 9, 23), (3, 3, 3), (40, 16, 16),
         (9, 31, 5), (2, 50, 11), (33, 5, 9), (7, 7, 7))
SWEEP = (2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128)
SWEEP_BATCH = 4
SWEEP_RTL = (4, 8, 16)                      # sizes of the sweep also played in RTL
STRATEGIES = ("whole", "quad", "finest", "planned")


def _log(msg, progress):
    if progress:
        print(f"split bench: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# (a) Area

_GROUPS = (("muxes", ("$_MUX_", "$_NMUX_")),
           ("flops", ("$_DFF_P_", "$_DFF_N_")))


def _grouped(delta):
    """Cell-type deltas grouped into muxes, flops and other gates (transistors)."""
    out = {name: 0 for name, _ in _GROUPS}
    out["other gates"] = 0
    for t, d in delta.items():
        name = next((n for n, types in _GROUPS if t in types), "other gates")
        out[name] += d["transistors"]
    return out


def area_table(size=None, tiles=None, styles=STYLES, *, mac=None, progress=True,
               dataflow="ws", executor=None):
    """One row per (tile, style): :func:`split_area_overhead` plus the grouped deltas,
    the overhead with a config register and the target verdict (defaults: :data:`SIZE`,
    :data:`AREA_TILES`). With an ``executor`` (:mod:`sim.execute`) every synthesis runs
    there first, all at once, and the rows then read them from the cache."""
    size, tiles = size or SIZE, tiles or AREA_TILES
    if executor is not None:
        from sim.flow_calls import synthesize_jobs
        jobs = {json.dumps(j, sort_keys=True): j for tile in tiles for style in styles
                for j in split_area_jobs(size, size, tile, mac, style=style,
                                         dataflow=dataflow)}
        _log(f"area {dataflow}: {len(jobs)} syntheses on {executor.name}", progress)
        synthesize_jobs(list(jobs.values()), executor=executor)
    rows = []
    for tile in tiles:
        for style in styles:
            t = time.monotonic()
            r = split_area_overhead(size, size, tile, mac, style=style, breakdown=False,
                                    dataflow=dataflow)
            base = r["base"]["transistors"]
            with_cfg = r["extra_transistors"] + r["config_register_transistors"]
            pct = round(100.0 * with_cfg / base, 3)
            target = AREA_TARGETS.get(tile)
            rows.append({**r, "tile_size": tile, "groups": _grouped(r["delta_by_type"]),
                         "overhead_with_config_register_pct": pct,
                         "target_pct": target,
                         "target_met": None if target is None else pct <= target})
            _log(f"area {dataflow} {size}x{size} tile {tile} {style}: "
                 f"{r['transistor_overhead_pct']:+.3f}%"
                 f" ({time.monotonic() - t:.0f} s)", progress)
    return rows


# ---------------------------------------------------------------------------------------
# (b) Throughput and (c) the RTL points of the sweep

def _jobs(shapes, seed, mac):
    rng = np.random.default_rng(seed)
    return [SplitJob(*random_operands(rng, *shape, mac)) for shape in shapes]


def throughput_programs(config, seed=2026):
    """``[(section, label, program, want)]``: every program of (b) and the RTL points
    of (c); ``want[i]`` is the numpy result job i of the program must give (for the
    GEMV cut into column blocks: the block of the full product)."""
    out = []
    four = _jobs([FOUR_GEMM] * 4, seed, config.mac)
    want4 = [j.A @ j.B for j in four]
    out.append(("four", "quad", [("quad", four)], want4))
    out.append(("four", "whole", [("whole", [list(four)])], want4))

    gemvs = _jobs([GEMV] * 4, seed + 1, config.mac)
    x, B = gemvs[0].A, gemvs[0].B
    n = GEMV[2] // 4
    blocks = [SplitJob(x, B[:, i * n:(i + 1) * n]) for i in range(4)]
    full = x @ B
    out.append(("gemv", "one GEMV, whole", [("whole", [gemvs[0]])], [full]))
    out.append(("gemv", "one GEMV in 4 column blocks, quad", [("quad", blocks)],
                [full[:, i * n:(i + 1) * n] for i in range(4)]))
    wantv = [j.A @ j.B for j in gemvs]
    out.append(("gemv", "4 GEMVs, quad", [("quad", gemvs)], wantv))
    out.append(("gemv", "4 GEMVs, whole", [("whole", [list(gemvs)])], wantv))

    mixed = _jobs(MIXED, seed + 2, config.mac)
    plans = compare_plans(MIXED, config)
    for label in ("planned", "whole", "finest"):
        prog = plan_to_program(plans[label], mixed)
        want = [j.A @ j.B for _, work in prog for js in work for j in js]
        out.append(("mixed", label, prog, want))

    for n in SWEEP_RTL:
        if (n, n, n) == FOUR_GEMM:
            continue                          # measured above
        jobs = _jobs([(n, n, n)] * SWEEP_BATCH, seed + 3 + n, config.mac)
        want = [j.A @ j.B for j in jobs]
        out.append(("sweep", f"{n} quad", [("quad", jobs)], want))
        out.append(("sweep", f"{n} whole", [("whole", [list(jobs)])], want))
    return out


def throughput_table(config, simulator, *, progress=True, seed=2026, executor=None):
    """Play :func:`throughput_programs` in one simulator run (on ``executor``, see
    :func:`sim.batch.simulate_many`); per program the RTL and model cycles
    (asserted equal), results checked against numpy."""
    progs = throughput_programs(config, seed)
    total = sum(program_cycles(p, config) for _, _, p, _ in progs)
    _log(f"RTL: {len(progs)} programs, {total} cycles on the {config.rows}x{config.cols} "
         f"split array with {simulator}",
         progress)
    t = time.monotonic()
    batch = SimBatch([p for _, _, p, _ in progs], config, simulator, label="throughput")
    results, = simulate_many([batch], executor=executor)
    rows = []
    for (section, label, prog, want), res in zip(progs, results):
        for i, (r, w) in enumerate(zip(res.jobs, want)):
            if not np.array_equal(r.C, w):
                raise AssertionError(f"{section} {label}: job {i} differs from numpy")
            if r.cycles != r.model_cycles:
                raise AssertionError(f"{section} {label}: job {i} RTL {r.cycles} != model "
                                     f"{r.model_cycles}")
        if res.cycles != res.model_cycles:
            raise AssertionError(f"{section} {label}: RTL {res.cycles} != model "
                                 f"{res.model_cycles}")
        macs = sum(int(np.prod(r.shape)) for r in res.jobs)
        rows.append({"section": section, "label": label, "jobs": len(res.jobs),
                     "phases": [m for m, _ in prog] if section == "mixed" else None,
                     "rtl_cycles": res.cycles, "model_cycles": res.model_cycles,
                     "macs": macs,
                     "utilization": round(macs / (config.rows * config.cols * res.cycles), 4),
                     "sim_seconds": round(res.sim_seconds, 2)})
    _log(f"RTL done in {time.monotonic() - t:.0f} s", progress)
    return rows


def _speedups(rows, plans_desc):
    by = {(r["section"], r["label"]): r["rtl_cycles"] for r in rows}
    four = by["four", "whole"] / by["four", "quad"]
    return {
        "four_gemms": {"quad": by["four", "quad"], "whole_sequential": by["four", "whole"],
                       "speedup": round(four, 3), "target": FOUR_TARGET,
                       "met": four >= FOUR_TARGET},
        "gemv_one": {"whole": by["gemv", "one GEMV, whole"],
                     "quad_column_blocks": by["gemv", "one GEMV in 4 column blocks, quad"],
                     "speedup": round(by["gemv", "one GEMV, whole"] /
                                      by["gemv", "one GEMV in 4 column blocks, quad"], 3)},
        "gemv_four": {"quad": by["gemv", "4 GEMVs, quad"],
                      "whole_sequential": by["gemv", "4 GEMVs, whole"],
                      "speedup": round(by["gemv", "4 GEMVs, whole"] /
                                       by["gemv", "4 GEMVs, quad"], 3)},
        "mixed": {label: {"cycles": by["mixed", label], "plan": plans_desc[label]}
                  for label in ("planned", "whole", "finest")},
    }


# ---------------------------------------------------------------------------------------
# (c) Utilization sweep (cycle model)

def utilization_sweep(config, sizes=None, batch=None):
    """Per n: cycles and utilization of ``batch`` n^3 GEMMs per strategy (model);
    defaults :data:`SWEEP`, :data:`SWEEP_BATCH`."""
    sizes, batch = sizes or SWEEP, batch or SWEEP_BATCH
    pes = config.rows * config.cols
    rows = []
    for n in sizes:
        shapes = [(n, n, n)] * batch
        plans = compare_plans(shapes, config)
        cycles = {"whole": plans["whole"].cycles,
                  "quad": program_cycles([("quad", shapes)], config),
                  "finest": plans["finest"].cycles, "planned": plans["planned"].cycles}
        macs = batch * n ** 3
        rows.append({"n": n, "batch": batch, "macs": macs, "cycles": cycles,
                     "utilization": {k: round(macs / (pes * c), 4) for k, c in cycles.items()},
                     "plan": plans["planned"].describe()})
    return rows


# ---------------------------------------------------------------------------------------
# Plots

def _plots(outdir, data):
    from sim.studies.plot import figure, save_figure
    caption = f"produced by: {data['command']}"
    paths = {}

    fig, (ax,) = figure(width=6.4, height=4.0)
    tiles = sorted({r["tile_size"] for r in data["area"]})
    width = 0.38
    for k, style in enumerate(sorted({r["style"] for r in data["area"]})):
        ys = [next(r["overhead_with_config_register_pct"] for r in data["area"]
                   if r["tile_size"] == t and r["style"] == style) for t in tiles]
        xs = [i + (k - 0.5) * width for i in range(len(tiles))]
        ax.bar(xs, ys, width, label=f"{style} style")
        for x, y in zip(xs, ys):
            ax.annotate(f"{y:+.2f}%", (x, y), ha="center",
                        va="bottom" if y >= 0 else "top", fontsize=8)
    for i, t in enumerate(tiles):
        if t in AREA_TARGETS:
            ax.hlines(AREA_TARGETS[t], i - 0.45, i + 0.45, colors="red", linestyles="--")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xticks(range(len(tiles)), [f"{t}x{t} tiles" for t in tiles])
    ax.set_ylabel("transistors vs unsplit (%), config reg. incl.")
    ax.set_title(f"Split overhead, {SIZE}x{SIZE} WS array (red: target)")
    ax.legend()
    paths["area"] = save_figure(fig, outdir / "split_area.png", caption)

    fig, (ax,) = figure(width=6.4, height=4.0)
    ns = [r["n"] for r in data["utilization"]]
    styles = {"whole": ("-", "o"), "quad": ("--", "s"), "finest": (":", "^"),
              "planned": ("-.", "v")}
    for s in STRATEGIES:
        ls, mk = styles[s]
        ax.plot(ns, [100 * r["utilization"][s] for r in data["utilization"]], marker=mk,
                linestyle=ls, label=s, alpha=0.85)
    rtl = [(r, int(r["label"].split()[0])) for r in data["throughput"]
           if r["section"] == "sweep"]
    rtl += [(r, FOUR_GEMM[0]) for r in data["throughput"] if r["section"] == "four"]
    if rtl:
        ax.scatter([n for _, n in rtl], [100 * r["utilization"] for r, _ in rtl],
                   marker="x", color="black", zorder=3, label="RTL-measured")
    ax.set_xscale("log", base=2)
    ax.set_xlabel(f"n ({SWEEP_BATCH} independent n x n x n GEMMs)")
    ax.set_ylabel("utilization (%)")
    ax.set_title(f"{SIZE}x{SIZE} WS array, {THROUGHPUT_TILE}x{THROUGHPUT_TILE} tiles: "
                 "split vs whole")
    ax.legend()
    ax.grid(True, alpha=0.3)
    paths["utilization"] = save_figure(fig, outdir / "split_utilization.png", caption)
    return {k: p.name for k, p in paths.items()}


# ---------------------------------------------------------------------------------------
# The bench

def _default_simulator():
    from sim.runner import available_simulators
    present = available_simulators()
    # Icarus builds the 32x32 array in about 30 s; the RTL part is a few thousand cycles.
    for s in ("icarus", "verilator"):
        if s in present:
            return s
    return None


def run_split_bench(outdir, progress=True, *, command=DEFAULT_COMMAND, simulator=None,
                    mac=None, executor=None):
    """Run every part and write ``outdir/split.json``, ``split.md`` and the plots;
    returns the JSON data. ``executor``: where the area syntheses and the RTL runs go
    (:mod:`sim.execute`; default local pools)."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    mac = mac or MacConfig()
    simulator = simulator or _default_simulator()
    start = time.monotonic()
    seconds = {}

    config = SplitConfig(SIZE, SIZE, THROUGHPUT_TILE, mac)
    plans = compare_plans(MIXED, config)
    t = time.monotonic()
    if simulator:
        through = throughput_table(config, simulator, progress=progress, executor=executor)
    else:
        through = []
        _log("no simulator: RTL part skipped", progress)
    seconds["rtl"] = round(time.monotonic() - t, 1)
    sweep = utilization_sweep(config)

    t = time.monotonic()
    area = area_table(mac=mac, progress=progress, executor=executor)
    seconds["area"] = round(time.monotonic() - t, 1)
    # Output stationary (compact PE): area overhead and the four 16^3 GEMMs in RTL.
    t = time.monotonic()
    area_os = area_table(mac=mac, progress=progress, dataflow="os", executor=executor)
    four_os = four_gemms_comparison(SIZE, THROUGHPUT_TILE * 2, FOUR_GEMM, mac,
                                    simulator=simulator, dataflow="os", executor=executor)
    seconds["os"] = round(time.monotonic() - t, 1)
    seconds["total"] = round(time.monotonic() - start, 1)

    data = {
        "command": command,
        "versions": tool_versions(simulators=True, yosys=True), "seconds": seconds,
        "array": f"{SIZE}x{SIZE}", "mac": mac.slug, "simulator": simulator,
        "throughput_config": {"tile": THROUGHPUT_TILE, "style": config.style},
        "area": area, "area_targets_pct": AREA_TARGETS,
        "throughput": through,
        "summary": _speedups(through, {k: v.describe() for k, v in plans.items()})
        if through else None,
        "mixed_shapes": [list(s) for s in MIXED],
        "mixed_model": {k: v.cycles for k, v in plans.items()},
        "utilization": sweep,
        "os": {"area": area_os, "four_gemms": four_os},
    }
    data["plots"] = _plots(outdir, data)
    write_json(outdir / "split.json", data)
    write_atomic(outdir / "split.md", _markdown(data))
    return data


def _pct(x):
    return f"{x:+.3f}%"


def _cell(text):
    """Plan descriptions use '|' between sub-arrays: escape it inside a table."""
    return text.replace("|", "\\|")


def _dims(shape):
    return "x".join(map(str, shape))


def _markdown(d):
    cmd = d["command"]
    by = f"(produced by `{cmd}`)"
    v = d["versions"]
    md = ["# Splittable array benchmark", "",
          f"Every number on this page was produced by `{cmd}` (total "
          f"{d['seconds']['total']:.0f} s: area {d['seconds']['area']:.0f} s, RTL "
          f"{d['seconds']['rtl']:.0f} s). {d['array']} weight-stationary array, MAC "
          f"`{d['mac']}`. Tools: " + ", ".join(f"{k} {v[k]}" for k in v if v[k]) + ".", ""]

    md += [f"## (a) Area overhead of splitting, {d['array']} {by}", "",
           f"Yosys flow `{cmos_flow()}` (`hdl.flows.synth`) on the splittable array and on "
           "the unsplit "
           "`systolic_array` (WS) of the same size. `mux`: 2:1 muxes at every tile "
           "boundary (activations, weights, w_en) plus the partial-sum cut; `ports`: no "
           "muxes, inner tiles fed through their own edge ports, only the partial-sum cut "
           "(the flops the unsplit array spends on carrying activations/weights across "
           "the boundaries are not needed, so `ports` can come out smaller). The cut "
           "bits are input ports; *with config reg.* adds one flop "
           "(16 transistors) per cut bit, as if they were held in a register.", ""]
    rows = []
    for r in d["area"]:
        g = r["groups"]
        rows.append([f"{r['tile']}", r["style"], r["base"]["transistors"],
                     r["split"]["transistors"], _pct(r["transistor_overhead_pct"]),
                     _pct(r["overhead_with_config_register_pct"]),
                     _pct(r["cell_overhead_pct"]), r["extra_cells"], g["muxes"],
                     g["flops"], g["other gates"], r["extra_port_bits"],
                     sum(r["config_bits"].values()), r["config_register_transistors"]])
    md += [markdown_table(["tile", "style", "unsplit T", "split T", "T overhead",
                           "with config reg.", "cell overhead", "extra cells",
                           "muxes dT", "flops dT", "other gates dT", "extra port bits",
                           "config bits", "config reg. T"], rows), "",
           "`dT` columns: transistors of split minus unsplit by cell type (muxes: "
           "`$_MUX_`/`$_NMUX_`; flops: `$_DFF_P_`; other: every other gate type; abc "
           "restructures logic, so these are net changes, not the cost of one "
           "feature). Extra port bits: `a_in_x`, `a_swap_x`, `a_valid_x`, `w_in_x`, "
           "`w_en_x`, `c_out_x`, `c_valid_x` (the unsplit array has "
           f"{d['area'][0]['port_bits_base']} data port bits).", ""]
    rows = []
    for r in d["area"]:
        a = r["analytic_gates"]
        act, w, cut = a["act_mux"]["mux2"], a["w_mux"]["mux2"], a["psum_cut"]["and2"]
        rows.append([r["tile"], r["style"], act, w, cut,
                     12 * (act + w) + 6 * cut])
    md += ["Boundary logic as the generator writes it (before Yosys and abc optimise "
           "it): 2:1 mux bits on activations (a, swap, valid) at tile-column boundaries "
           "and on weights (w, w_en) at tile-row boundaries, AND gates of the partial-sum "
           "cut; `gate T` prices them at Yosys' CMOS costs (MUX 12, AND 6).", "",
           markdown_table(["tile", "style", "activation mux bits", "weight mux bits",
                           "partial-sum AND gates", "gate T"], rows), ""]
    for r in d["area"]:
        if r["target_pct"] is not None:
            md.append(f"- target {r['tile']} tiles, {r['style']} style: <= "
                      f"+{r['target_pct']}% with config registers -> "
                      f"{_pct(r['overhead_with_config_register_pct'])}: "
                      f"**{'met' if r['target_met'] else 'not met'}**")
    md += ["", f"Plot: `{d['plots']['area']}`.", ""]

    if d["throughput"]:
        s = d["summary"]
        md += [f"## (b) Throughput in RTL, {d['array']}, "
               f"{d['throughput_config']['tile']}x{d['throughput_config']['tile']} tiles, "
               f"{d['throughput_config']['style']} style, {d['simulator']} {by}", "",
               "Cycles measured in RTL (cycle of the last result + 1), every C checked "
               "against numpy, every job's and program's RTL cycles asserted equal to "
               "the cycle model (`sim.drivers.split.program_cycles`). Programs of several "
               "phases switch split mode without reset (`switch_gap`).", ""]
        rows = [[r["section"], r["label"], r["jobs"], r["rtl_cycles"], r["model_cycles"],
                 r["macs"], r["utilization"]] for r in d["throughput"]]
        md += [markdown_table(["part", "program", "jobs", "RTL cycles", "model cycles",
                               "MACs", "utilization"], rows), ""]
        f = s["four_gemms"]
        md += [f"- four independent {_dims(FOUR_GEMM)} GEMMs: quad {f['quad']} cycles, one after "
               f"another on the whole array {f['whole_sequential']} -> **{f['speedup']:.2f}x**"
               f" (target >= {f['target']:.0f}x: **{'met' if f['met'] else 'not met'}**)",
               f"- GEMV {_dims(GEMV)}: whole {s['gemv_one']['whole']} cycles; cut into four "
               f"{GEMV[2] // 4}-column blocks on quad {s['gemv_one']['quad_column_blocks']} -> "
               f"{s['gemv_one']['speedup']:.2f}x; four independent GEMVs: quad "
               f"{s['gemv_four']['quad']}, whole one after another "
               f"{s['gemv_four']['whole_sequential']} -> {s['gemv_four']['speedup']:.2f}x "
               "(weight loading dominates a GEMV: the split loads four weight blocks at "
               "once)",
               "- mixed batch " + ", ".join("x".join(map(str, m)) for m in d["mixed_shapes"])
               + ": " + "; ".join(f"{k} **{v['cycles']}** cycles (`{v['plan']}`)"
                                  for k, v in s["mixed"].items()), ""]

    md += [f"## (c) Utilization, split vs whole {by}", "",
           f"{SWEEP_BATCH} independent n x n x n GEMMs; utilization = MACs / "
           f"({d['array']} PEs x cycles); cycles from the model, {THROUGHPUT_TILE}x"
           f"{THROUGHPUT_TILE} tiles. whole: one after another on the whole array; quad: "
           f"one per quadrant ({SIZE // 2}x{SIZE // 2} PEs); finest: every tile its own "
           "sub-array (LPT); "
           "planned: `plan_jobs`. Sizes " + ", ".join(map(str, SWEEP_RTL)) +
           " were also played in RTL (whole and quad, table (b)): RTL == model.", ""]
    rows = [[r["n"], *(r["cycles"][k] for k in STRATEGIES),
             *(r["utilization"][k] for k in STRATEGIES), _cell(r["plan"])]
            for r in d["utilization"]]
    md += [markdown_table(["n", *(f"{k} cycles" for k in STRATEGIES),
                           *(f"{k} util" for k in STRATEGIES), "plan"], rows), "",
           f"Plot: `{d['plots']['utilization']}`.", ""]
    if d.get("os"):
        o = d["os"]
        f = o["four_gemms"]
        md += ["## Output stationary (compact PE)", "",
               markdown_table(["tile", "style", "transistors unsplit", "split",
                               "overhead", "with config register", "extra port bits"],
                              [[r["tile"], r["style"], r["base"]["transistors"],
                                r["split"]["transistors"],
                                _pct(r["transistor_overhead_pct"]),
                                _pct(r["overhead_with_config_register_pct"]),
                                r["extra_port_bits"]] for r in o["area"]]), "",
               f"- four independent {_dims(FOUR_GEMM)} GEMMs: quad "
               f"{f.get('rtl_quad', f['quad'])} cycles, whole one after another "
               f"{f.get('rtl_whole_sequential', f['whole_sequential'])} -> "
               f"**{f['speedup']:.2f}x** ({'RTL' if 'rtl_quad' in f else 'model'})", ""]
    return "\n".join(md)
