"""``systolic bench --only sim``: simulation speed of the array on every path.

For 8x8, 16x16, 32x32 and 64x64 OS arrays (double-buffered PE, fold overlap, default
MAC) and each combination of path (native: memory file played by the C++ harness or
the Verilog player; cocotb: per-cycle Python), simulator (Verilator, Icarus) and model
(gate-level, proven twin), one random GEMM is run and checked (C == numpy, cycles ==
model), and the bench records cycles per second and the build time. Speeds are per
second of the simulator process's CPU time (this 2-core machine is shared: wall time
moves with other jobs' load far more than with the code; wall cycles/s are recorded
too). For every Verilator design the bare loop of the native harness (clock toggling
only, no stimulus or result I/O) gives the ceiling, and each Verilator row the fraction
of its ceiling it reached.

The GEMM of a row is n x K x n on an n x n array (one output tile: about K cycles,
every PE busy), K from the row's cycle budget; the target rows run their targets'
shapes: 512x512x512 on 16x16. Build seconds are those of the build when it ran
(cached builds keep the time in their stamp). ``skip_slow`` leaves out the combinations
that take longest here (gate-level Verilator builds of 64x64, and 32x32 through
cocotb; gate-level Icarus at 64x64) but never a target row.
"""
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from hdl.emit import write_atomic
from hdl.mac import MacConfig
from hdl.array import ArrayConfig
from sim.drivers.gemm import DEFAULT_BUILD_ROOT, run_gemms
from sim.native.build import _COMMON_VERILATOR, build_player, run_bare
from sim.native.run import array_layout, design_for, run_gemms_native
from sim.studies.tables import markdown_table, write_json

__all__ = ["run_sim_bench", "SIZES", "TARGETS"]

SIZES = (8, 16, 32, 64)
BARE_CYCLES = 200_000
BARE_SECONDS = 60.0
# (size, path, simulator, model) -> (target cycles/s, what): the targets.
TARGETS = {
    (16, "native", "verilator", "twin"): (150_000, "16x16 OS 512^3, native, twin"),
    (16, "native", "verilator", "gate"): (30_000, "16x16 OS 512^3, native, gate-level "
                                                  "(build <= 60 s)"),
    (64, "native", "verilator", "twin"): (10_000, "64x64, native, twin"),
}
GATE_BUILD_TARGET = 60.0


def _budget(size, path, simulator, model):
    """Cycles a row simulates (about the K of its n x K x n GEMM): about a minute or
    less of simulation at the speeds measured here (the rate is what a row reports)."""
    pes = size * size
    if simulator == "icarus":
        return max(64, (800_000 if model == "twin" else 300_000) // pes)
    if path == "cocotb":
        return 20_000
    return 200_000 if model == "twin" else max(20_000, 6_000_000 // pes)


def _bare_cycles(size, model):
    """Cycles of a design's bare loop: ``BARE_CYCLES``, but for gate-level designs no
    more than twice the native Verilator row's budget (the 64x64 gate-level loop runs
    about 300 cycles/s: 200,000 cycles would take 11 minutes a run)."""
    if model == "twin":
        return BARE_CYCLES
    return min(BARE_CYCLES, 2 * _budget(size, "native", "verilator", model))


def _slow(size, path, simulator, model):
    """The combinations whose builds take longest here (``--skip-slow`` leaves them out)."""
    if model != "gate":
        return False
    if simulator == "verilator":
        return size >= 64 or (size >= 32 and path == "cocotb")
    return size >= 64


def _operands(M, K, N, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(-8, 8, (M, K)), rng.integers(-8, 8, (K, N))


def _cocotb_build_seconds(config, simulator):
    stamp = Path(DEFAULT_BUILD_ROOT) / f"{config.slug}_{simulator}" / ".systolic-build.json"
    try:
        return float(json.loads(stamp.read_text()).get("seconds", 0.0))
    except (OSError, ValueError):
        return None


def _row(size, path, simulator, model):
    config = ArrayConfig(size, size, "os", MacConfig(), fold_overlap=True)
    target = TARGETS.get((size, path, simulator, model))
    shape = (512, 512, 512) if target and size == 16 else \
        (size, _budget(size, path, simulator, model), size)
    A, B = _operands(*shape, seed=size)
    t0 = time.monotonic()
    if path == "native":
        r = run_gemms_native([(A, B)], config, simulator=simulator, model=model)[0]
        build = r.build.recorded_seconds
        build_cpu = r.build.recorded_cpu_seconds
        proof = r.proof
    else:
        design, proof = design_for(config, model)
        r = run_gemms([(A, B)], design, simulator=simulator)[0]
        build = _cocotb_build_seconds(design, simulator)
        build_cpu = None
    ok = bool(np.array_equal(r.C, A @ B)) and r.cycles == r.model_cycles
    row = {"size": size, "path": path, "simulator": simulator, "model": model,
           "gemm": "x".join(map(str, shape)), "cycles": r.cycles,
           "model_cycles": r.model_cycles, "simulated_cycles": r.simulated_cycles,
           "checked": ok, "build_seconds": None if build is None else round(build, 1),
           "build_cpu_seconds": None if build_cpu is None else round(build_cpu, 1),
           "cpu_seconds": round(r.sim_cpu_seconds, 3), "wall_seconds": round(r.sim_seconds, 3),
           "cycles_per_s": round(r.simulated_cycles / max(r.sim_cpu_seconds, 1e-9)),
           "wall_cycles_per_s": round(r.simulated_cycles / max(r.sim_seconds, 1e-9)),
           "run_seconds": round(time.monotonic() - t0, 1),
           "twin_proof": proof.cite() if proof else None}
    if simulator == "verilator":
        design = design_for(config, model)[0]
        b = build_player(design.verilog(), array_layout(design), design.slug,
                         "verilator", model=model)
        bare = _bare_cycles(size, model)
        cpu = _best_bare(b, bare)
        row["bare_cycles"] = bare
        row["bare_cycles_per_s"] = round(bare / max(cpu, 1e-9))
        row["fraction_of_bare"] = round(row["cycles_per_s"] / row["bare_cycles_per_s"], 3)
        row["bare_build_seconds"] = round(b.recorded_seconds, 1)
    if target:
        row["target_cycles_per_s"] = target[0]
        row["target_met"] = row["cycles_per_s"] >= target[0] and ok and (
            model != "gate" or (row["build_seconds"] or 0) <= GATE_BUILD_TARGET)
    return row


def combos(sizes=SIZES, skip_slow=False):
    """The rows to run: the target rows first, then the rest by size, the slowest
    builds last (so an interrupted run has the rows that matter most)."""
    out = [k for k in TARGETS if k[0] in sizes]
    rest = [(size, path, simulator, model) for size in sizes
            for path, simulator in (("native", "verilator"), ("native", "icarus"),
                                    ("cocotb", "verilator"), ("cocotb", "icarus"))
            for model in ("twin", "gate")]
    rest = [k for k in rest if k not in out]
    out += sorted(rest, key=lambda k: (_slow(*k), k[0]))
    return [k for k in out if not (skip_slow and _slow(*k) and k not in TARGETS)]


# Verilator flag sets measured against each other (the chosen ones are
# sim.native.build.VERILATOR_FLAGS): g++ optimization of the model's eval code
# (OPT_FAST), Verilator's own optimization level, inlining of ``pe`` into the top,
# Verilator threads, C++ output splitting, and the precompiled header.
_GATE, _TWIN = ("-O3", "-fno-inline"), ("-O3",)
FLAG_CANDIDATES = {
    "gate": [{"opt_fast": "-O1", "verilator": _GATE},
             {"opt_fast": "-O2", "verilator": _GATE},
             {"opt_fast": "-Os", "verilator": _GATE},
             {"opt_fast": "-O2", "verilator": ("-O0", "-fno-inline")},
             {"opt_fast": "-O2", "verilator": (*_GATE, "--threads", "2")},
             {"opt_fast": "-O2", "verilator": (*_GATE, "--output-split", "4000")},
             {"opt_fast": "-O2", "verilator": ("-O3",)}],
    "twin": [{"opt_fast": "-O1", "verilator": _TWIN},
             {"opt_fast": "-O2", "verilator": _TWIN},
             {"opt_fast": "-Os", "verilator": _TWIN},
             {"opt_fast": "-O0", "verilator": _TWIN},
             {"opt_fast": "-Os", "verilator": ("-O0",)},
             {"opt_fast": "-Os", "verilator": ("-O3", "-fno-inline")},
             {"opt_fast": "-Os", "verilator": ("-O3", "--threads", "2")},
             {"opt_fast": "-Os", "verilator": ("-O3", "--output-split", "4000")},
             {"opt_fast": "-Os", "verilator": _TWIN, "pch": False}],
}


def _flag_text(flags):
    return " ".join(flags["verilator"]) + ("" if flags.get("pch", True) else
                                           " (no precompiled header)")


def flag_rows(size=16, cycles=100_000, models=("twin", "gate"), progress=False):
    """Build seconds and bare-loop cycles/s (CPU) of the size x size OS array per
    candidate flag set and model (a row with ``error`` when a build fails)."""
    from sim.native.build import VERILATOR_FLAGS
    config = ArrayConfig(size, size, "os", MacConfig(), fold_overlap=True)
    rows = []
    for model in models:
        design = design_for(config, model)[0]
        for flags in FLAG_CANDIDATES[model]:
            chosen = flags == VERILATOR_FLAGS[model]
            row = {"size": size, "model": model, "opt_fast": flags["opt_fast"],
                   "verilator": _flag_text(flags), "chosen": chosen, "load_average": None}
            if progress:
                print(f"  flags {model}: {flags['opt_fast']} {row['verilator']}",
                      file=sys.stderr, flush=True)
            try:
                b = build_player(design.verilog(), array_layout(design), design.slug,
                                 "verilator", model=model, flags=None if chosen else flags)
                cpu = _best_bare(b, cycles)
            except Exception as e:        # a failing flag set is a result too
                lines = str(e).splitlines()
                why = next((x.strip() for x in lines if "error:" in x), lines[0])
                row["error"] = f"{type(e).__name__}: {why}"[:200]
                rows.append(row)
                continue
            row.update(build_seconds=round(b.recorded_seconds, 1),
                       build_cpu_seconds=None if b.recorded_cpu_seconds is None
                       else round(b.recorded_cpu_seconds, 1),
                       bare_cycles_per_s=round(cycles / max(cpu, 1e-9)),
                       load_average=_load())
            rows.append(row)
    return rows


def _best_bare(build, cycles, repeat=3):
    """CPU seconds of the bare loop, the best of up to ``repeat`` runs (the machine is
    shared: other processes slow a run down, never speed it up); no further run once
    the runs so far took ``BARE_SECONDS`` of CPU (a slow design's one run is long
    enough to measure)."""
    times = []
    while len(times) < repeat and sum(times) < BARE_SECONDS:
        times.append(run_bare(build, cycles)[1])
    return min(times)


def _load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


HEADERS = ["array", "path", "simulator", "model", "GEMM", "cycles (= model)",
           "cycles/s (CPU)", "cycles/s (wall)", "build s (wall / CPU)", "bare loop cycles/s",
           "of bare", "target"]


def _table(rows):
    out = []
    for r in rows:
        if "error" in r:
            out.append([f"{r['size']}x{r['size']}", r["path"], r["simulator"], r["model"],
                        "failed: " + r["error"][:80]] + [""] * (len(HEADERS) - 5))
            continue
        tgt = ""
        if "target_cycles_per_s" in r:
            tgt = (f">= {r['target_cycles_per_s']:,}: "
                   f"{'met' if r['target_met'] else 'NOT met'}")
        out.append([f"{r['size']}x{r['size']}", r["path"], r["simulator"], r["model"],
                    r["gemm"], f"{r['cycles']:,}" + ("" if r["checked"] else " (WRONG)"),
                    f"{r['cycles_per_s']:,}", f"{r['wall_cycles_per_s']:,}",
                    f"{r['build_seconds']} / {r.get('build_cpu_seconds') or '-'}",
                    f"{r['bare_cycles_per_s']:,}"
                    if "bare_cycles_per_s" in r else "-",
                    f"{r['fraction_of_bare']:.0%}" if "fraction_of_bare" in r else "-", tgt])
    return out


PARTS = ("all", "rows", "flags")


def _previous(outdir):
    try:
        return json.loads((outdir / "sim.json").read_text())
    except (OSError, ValueError):
        return {}


def run_sim_bench(outdir, *, command, sizes=SIZES, skip_slow=False, progress=True,
                  part="all", resume=False):
    """Run the bench rows and the flag study (``part``: ``all``, or only ``rows`` or
    ``flags``, keeping the other part of an earlier ``sim.json``); writes ``sim.json``
    and ``sim.md`` into ``outdir`` after every row (an interrupted run leaves the rows
    it measured, marked incomplete). ``resume``: keep the rows of ``sim.json`` that were
    measured (not failed) and run only the others."""
    if part not in PARTS:
        raise ValueError(f"unknown part {part!r}; allowed: {', '.join(PARTS)}")
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    old = _previous(outdir)
    do_rows, do_flags = part in ("all", "rows"), part in ("all", "flags")
    todo = combos(sizes, skip_slow) if do_rows else []
    skipped = [k for k in combos(sizes) if k not in todo] if do_rows else \
        [tuple(x[k] for k in ("size", "path", "simulator", "model"))
         for x in old.get("skipped", [])]
    rows = [] if do_rows else old.get("rows", [])
    if do_rows and resume:
        rows = [r for r in old.get("rows", []) if "error" not in r
                and (r["size"], r["path"], r["simulator"], r["model"]) in todo]
        done = {(r["size"], r["path"], r["simulator"], r["model"]) for r in rows}
        todo = [k for k in todo if k not in done]
    flag_table = [] if do_flags else old.get("flags", [])
    meta = {"rows": {"command": command, "load_average": _load()} if do_rows else
            old.get("parts", {}).get("rows"),
            "flags": {"command": command, "load_average": _load()} if do_flags else
            old.get("parts", {}).get("flags")}
    start = time.monotonic()
    for n, key in enumerate(todo, 1):
        if progress:
            print(f"[{n}/{len(todo)}] {key[0]}x{key[0]} {key[1]} {key[2]} {key[3]}",
                  file=sys.stderr, flush=True)
        try:
            rows.append(_row(*key))
        except Exception as e:          # one broken combination must not lose the rest
            rows.append({"size": key[0], "path": key[1], "simulator": key[2],
                         "model": key[3], "error": f"{type(e).__name__}: {e}"[:300]})
            print(f"  failed: {rows[-1]['error']}", file=sys.stderr, flush=True)
        rows[-1]["load_average"] = _load()
        _write(outdir, meta, rows, skipped, flag_table, start,
               pending=len(todo) - n + (1 if do_flags else 0), waiting=todo[n:], part=part)
    if do_flags:
        if progress:
            print("flag study: 16x16, every candidate flag set", file=sys.stderr, flush=True)
        flag_table = flag_rows(progress=progress)
    return _write(outdir, meta, rows, skipped, flag_table, start, pending=0, part=part)


def _write(outdir, meta, rows, skipped, flag_table, start, *, pending, waiting=(),
           part="all"):
    # The part not run now is taken from sim.json as it is now (the other part may be
    # running in another process).
    old = _previous(outdir) if part != "all" else {}
    if part == "flags":
        rows = old.get("rows", [])
        skipped = [tuple(x[k] for k in ("size", "path", "simulator", "model"))
                   for x in old.get("skipped", [])]
        waiting = [tuple(x[k] for k in ("size", "path", "simulator", "model"))
                   for x in old.get("waiting", [])]
        pending = len(waiting)
    if part in ("flags", "rows"):
        other = "rows" if part == "flags" else "flags"
        meta = {**meta, other: old.get("parts", {}).get(other)}
    if part == "rows":
        flag_table = old.get("flags", [])
    load = _load().split()
    rows = sorted(rows, key=lambda r: (r["size"], r["simulator"], r["path"], r["model"]))
    data = {"parts": meta, "host": {"python": sys.version.split()[0],
                                    "machine": platform.machine(),
                                    "cpus": os.cpu_count(), "load_average": load},
            "seconds": round(time.monotonic() - start, 1), "rows": rows,
            "flags": flag_table, "pending": pending,
            "waiting": [dict(zip(("size", "path", "simulator", "model"), k)) for k in waiting],
            "skipped": [dict(zip(("size", "path", "simulator", "model"), k))
                        for k in skipped]}
    from sim.native.build import VERILATOR_FLAGS
    for r in flag_table:            # the chosen sets as this code has them
        if "model" in r:
            r["chosen"] = (r["opt_fast"] == VERILATOR_FLAGS[r["model"]]["opt_fast"]
                           and r["verilator"] == _flag_text(VERILATOR_FLAGS[r["model"]]))
    write_json(outdir / "sim.json", data)
    proofs = sorted({r["twin_proof"] for r in rows if r.get("twin_proof")})
    rmeta, fmeta = meta.get("rows") or {}, meta.get("flags") or {}
    md = ["# Simulation speed", "",
          f"Rows produced by `{rmeta.get('command', '-')}` (load average "
          f"{rmeta.get('load_average', '-')} at the start, each row's at its end in "
          f"sim.json; {data['host']['cpus']} CPUs, shared). OS arrays with fold overlap, "
          f"default MAC ({MacConfig().slug}); cycles/s per second of simulator CPU time "
          f"(wall alongside). Every row's C equals numpy and its cycles equal the cycle "
          f"model unless marked WRONG. A row's GEMM is sized for its cycle budget (slow "
          f"combinations simulate fewer cycles: the rate is what is compared).", ""]
    if pending:
        md += [f"**Incomplete**: {pending} part(s) of the run not measured yet"
               + (": " + "; ".join(f"{s}x{s} {p} {sim} {m}" for s, p, sim, m in waiting)
                  if waiting else "") + ".", ""]
    md += [markdown_table(HEADERS, _table(rows)), ""]
    if skipped:
        md += ["Not run (`--skip-slow`, the longest builds on this machine): " + "; ".join(
            f"{s}x{s} {p} {sim} {m}" for s, p, sim, m in skipped) + ".", ""]
    if flag_table:
        md += ["## Verilator flags", "",
               f"Produced by `{fmeta.get('command', '-')}` (load average "
               f"{fmeta.get('load_average', '-')} at the start). Build seconds and "
               "bare-loop cycles/s (CPU, best of 3 runs) of the 16x16 OS array per flag set: "
               "g++ flags of "
               "the model's eval code (OPT_FAST), Verilator flags (after the common "
               f"`{' '.join(_COMMON_VERILATOR)}`); the chosen set of each model is marked. "
               "Build wall seconds move with the machine's load; build CPU seconds count "
               "the compilers of every process.", "",
               markdown_table(["model", "g++ (OPT_FAST)", "verilator",
                               "build s (wall / CPU)", "bare cycles/s", "load", "chosen"],
                              [[r["model"], r["opt_fast"], r["verilator"],
                                "failed: " + r["error"][:60] if "error" in r else
                                f"{r['build_seconds']} / {r.get('build_cpu_seconds') or '-'}",
                                f"{r['bare_cycles_per_s']:,}" if "error" not in r else "-",
                                r.get("load_average") or "-",
                                "yes" if r["chosen"] else ""] for r in flag_table]), ""]
    md += ["Twin proofs cited: " + ("; ".join(proofs) if proofs else "none"), ""]
    write_atomic(outdir / "sim.md", "\n".join(md))
    return data
