"""Workload bench: ``build/bench/workload.{json,md}`` and ``workload_*.png``.

Every shipped model (:func:`sim.models.workload.builtin_models`) on a :data:`SIZE` x
:data:`SIZE` weight-stationary array with :data:`TILE` x :data:`TILE` tiles, default MAC:

* whole vs split vs SCALE-Sim (:func:`sim.studies.workload.compare_workload`, cycle
  model) in decode at batch 1 and 16 (context :data:`CONTEXT`) and in prefill of
  :data:`PREFILL_TOKENS` tokens: a table per model and phase, a plot each, and the
  target (decode: split >= :data:`TARGET` x fewer cycles than whole); the decode cases
  again with the GQA query heads stacked (GQA models) and on the output-stationary array;
* utilization of the whole model against the decode batch size (:data:`SWEEP`), whole
  vs split, one plot;
* RTL on real shapes (:func:`sim.studies.workload_rtl.run_rtl_shapes`) on a
  :data:`RTL_SIZE` x :data:`RTL_SIZE` split array: each model's decode GEMV and prefill
  projection at full size, one expert's GEMM in both phases (mixtures of experts) and
  its attention GEMMs per head, whole and split, C against numpy and cycles against the
  model.

Run it with ``systolic bench --only workload`` (part of ``make bench``).
"""
import sys
import time
from pathlib import Path

from hdl.emit import write_atomic
from hdl.mac import MacConfig
from hdl.split import SplitConfig
from sim.execute import tqdm_progress
from sim.models.workload import Phase, builtin_models, load_config, model_shape
from sim.studies.provenance import tool_versions
from sim.studies.tables import markdown_table, write_json
from sim.studies.workload import compare_workload
from sim.studies.workload_report import compare_markdown, plot_batch_sweep, plot_compare
from sim.studies.workload_rtl import (native_available, run_rtl_models, RTL_CONTEXT,
                                      RTL_MAX_CYCLES, RTL_TOKENS)

__all__ = ["run_workload_bench", "SIZE", "TILE", "CONTEXT", "PREFILL_TOKENS", "SWEEP",
           "TARGET", "DEFAULT_COMMAND"]

DEFAULT_COMMAND = "systolic bench --only workload"
SIZE, TILE = 64, 16
CONTEXT = 1024
PREFILL_TOKENS = 512
DECODE_BATCHES = (1, 16)
SWEEP = (1, 2, 4, 8, 16, 32, 64, 128, 256)
TARGET = 3.0                      # decode: whole cycles / split cycles
# The RTL part's array: the cycle model's own 64x64 array with 16x16 tiles, simulated
# on the native path with the proven twin (sim.native).
RTL_SIZE, RTL_TILE = SIZE, TILE


def _phases():
    return ([Phase("decode", batch=b, context=CONTEXT) for b in DECODE_BATCHES]
            + [Phase("prefill", batch=1, tokens=PREFILL_TOKENS)])


def _slug(d):
    tag = f"decode_b{d['batch']}" if d["phase"] == "decode" else f"prefill_l{d['tokens']}"
    return f"workload_{d['name']}_{tag}_{d['dataflow']}.png"


def _models():
    return [model_shape(load_config(n)[0], name=n) for n in builtin_models()]


def _default_simulator():
    from sim.runner import available_simulators
    present = available_simulators()
    for s in ("verilator", "icarus"):
        if s in present:
            return s
    return None


def run_workload_bench(outdir, progress=True, *, command=DEFAULT_COMMAND, simulator=None,
                       rtl=True, rtl_size=None, rtl_tile=None, mac=None, executor=None):
    """Run every part, write ``outdir/workload.json``, ``workload.md`` and the plots;
    returns the JSON data. ``rtl_size``/``rtl_tile``: the array of the RTL part
    (default :data:`RTL_SIZE`/:data:`RTL_TILE`); its simulator runs, one per model, go to
    ``executor`` together (:mod:`sim.execute`; default a local pool)."""
    from tqdm import tqdm
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    mac = mac or MacConfig()
    caption = f"produced by: {command}"
    start = time.monotonic()
    models = _models()
    configs = {df: SplitConfig(SIZE, SIZE, TILE, mac, dataflow=df) for df in ("ws", "os")}
    decode = [ph for ph in _phases() if ph.kind == "decode"]
    cases = [(m, ph, "ws", False) for m in models for ph in _phases()]
    cases += [(m, ph, "ws", True) for m in models for ph in decode if m.kv_heads < m.heads]
    cases += [(m, ph, "os", False) for m in models for ph in decode]
    compares = []
    for m, ph, df, stack in tqdm(cases, desc="workload: whole vs split", unit="case",
                                 file=sys.stderr, disable=not progress):
        d = compare_workload(m, ph, configs[df], stack_gqa=stack)
        d["plot"] = (plot_compare(d, outdir / _slug(d), caption).name
                     if df == "ws" and not stack else None)
        if ph.kind == "decode":
            d["target"] = TARGET
            d["target_met"] = d["model"]["speedup"] >= TARGET
        compares.append(d)
    sweep = {}
    for m in tqdm(models, desc="workload: batch sweep", unit="model", file=sys.stderr,
                  disable=not progress):
        sweep[m.name] = []
        for b in SWEEP:
            t = compare_workload(m, Phase("decode", batch=b, context=CONTEXT),
                                 configs["ws"])["model"]
            sweep[m.name].append({"batch": b, "whole_util": t["whole_util"],
                                  "split_util": t["split_util"],
                                  "whole_cycles": t["whole_cycles"],
                                  "split_cycles": t["split_cycles"],
                                  "speedup": t["speedup"]})
    sweep_png = plot_batch_sweep(
        sweep, outdir / "workload_batch.png", caption,
        title=f"Decode at context {CONTEXT}, {SIZE}x{SIZE} WS array, {TILE}x{TILE} tiles: "
              "whole (solid) vs split (dashed)").name
    seconds = {"model": round(time.monotonic() - start, 1)}
    rtl_rows, rtl_info = [], None
    simulator = simulator or _default_simulator()
    if rtl and simulator:
        native = native_available()
        size, tile = rtl_size or RTL_SIZE, rtl_tile or RTL_TILE
        cfg = SplitConfig(size, size, tile, mac)
        rtl_info = {"array": f"{size}x{size}", "tile": f"{tile}x{tile}",
                    "path": "native" if native else "cocotb", "simulator": simulator,
                    "tokens": RTL_TOKENS, "context": RTL_CONTEXT,
                    "max_cycles": RTL_MAX_CYCLES}
        t = time.monotonic()
        with tqdm(total=len(models), desc=f"workload: RTL on {size}x{size}", unit="model",
                  file=sys.stderr, disable=not progress) as bar:
            rtl_rows = run_rtl_models(models, cfg, simulator=simulator, seed=2026,
                                      executor=executor, progress=tqdm_progress(bar))
        seconds["rtl"] = round(time.monotonic() - t, 1)
    seconds["total"] = round(time.monotonic() - start, 1)
    data = {"command": command, "versions": tool_versions(simulators=True),
            "seconds": seconds,
            "array": f"{SIZE}x{SIZE}", "tile": f"{TILE}x{TILE}", "mac": mac.slug,
            "context": CONTEXT, "prefill_tokens": PREFILL_TOKENS, "target": TARGET,
            "compare": compares, "batch_sweep": sweep, "batch_plot": sweep_png,
            "rtl": {"config": rtl_info, "models": rtl_rows}}
    write_json(outdir / "workload.json", data)
    write_atomic(outdir / "workload.md", _markdown(data))
    return data


def summary_rows(data):
    """One row per (model, phase, dataflow): totals of the whole model and the target."""
    rows = []
    for d in data["compare"]:
        t = d["model"]
        verdict = "-" if "target" not in d else ("met" if d["target_met"] else "NOT met")
        rows.append([d["name"], d["phase_text"], d["dataflow"],
                     "stacked" if d["stack_gqa"] else "per head", t["macs"],
                     t["scalesim_cycles"], t["whole_cycles"], t["whole_util"],
                     t["split_cycles"], t["split_util"], t["speedup"], verdict])
    return rows


def _markdown(d):
    cmd = d["command"]
    v = d["versions"]
    md = ["# Workload benchmark: language models on whole and split arrays", "",
          f"Every number on this page was produced by `{cmd}` ({d['seconds']['total']:.0f} s"
          f"). {d['array']} array, {d['tile']} tiles, MAC `{d['mac']}`. Tools: "
          + ", ".join(f"{k} {v[k]}" for k in v if v[k]) + ".", "",
          "## Summary (cycle model, whole model = all layers + LM head)", "",
          f"Decode: one token per sequence at context {d['context']}; prefill: "
          f"{d['prefill_tokens']} tokens. *whole*: every GEMM one after another on the "
          "whole array; *split*: the scheduler per stage of dependent GEMMs; *SCALE-Sim*: "
          f"its formula on the whole array. Target: decode split >= {d['target']:.0f}x "
          "fewer cycles than whole. *attention*: one GEMM per query head, or (GQA models) "
          "the query heads of each K/V head stacked into one (`--stack-gqa`).", "",
          markdown_table(["model", "phase", "dataflow", "attention", "MACs", "SCALE-Sim",
                          "whole",
                          "whole util", "split", "split util", "whole/split", "target"],
                         summary_rows(d)), ""]
    md += ["## Utilization against the decode batch size (WS)", "",
           markdown_table(["model", *(f"B={r['batch']}" for r in
                                      next(iter(d["batch_sweep"].values())))],
                          [[name, *(f"{100 * r['whole_util']:.2f}% / "
                                    f"{100 * r['split_util']:.2f}%" for r in rows)]
                           for name, rows in d["batch_sweep"].items()]), "",
           "Each cell: whole / split utilization of the whole model. Decode attention is "
           "one GEMV per sequence and head (its keys and values are that sequence's own), "
           "so it does not batch; the projections do.", "",
           f"Plot: `{d['batch_plot']}`.", ""]
    r = d["rtl"]
    if r["config"]:
        c = r["config"]
        md += [f"## RTL on real shapes ({c['array']} split array, {c['tile']} tiles, "
               f"{c['path']} path, {c['simulator']})", "",
               f"Per model, at full size unless marked: the layer's smallest dense weight "
               f"projection (fewest MACs; K/V under GQA) for one "
               f"token (a GEMV) and for a prefill of {c['tokens']} tokens, for mixtures "
               f"of experts the router and one expert's first MLP GEMM with its share of "
               f"the tokens in both phases, and one head's "
               f"attention GEMMs in decode (context {c['context']}) and prefill, random "
               "int4 operands; whole: one after another in mode whole; split: the "
               "scheduler's program. Every C equals numpy, every job's and program's RTL "
               "cycles equal the model (asserted).", ""]
        cut = sorted({f"{x['model']} {g['gemm']}: {g['note']}" for x in r["models"]
                      for g in x["gemms"] if g.get("note")})
        if cut:
            md += [f"\\* run on its first columns: longer than the budget of "
                   f"{c['max_cycles']:,} cycles on the whole array; the columns of a weight "
                   "matrix are independent tiles: " + "; ".join(cut) + ".", ""]
        rows = [[x["model"], ", ".join(
                    f"{g['M']}x{g['K']}x{g['N']}" + ("*" if g.get("note") else "")
                    for g in x["gemms"]),
                 x["whole"]["rtl_cycles"], x["whole"]["model_cycles"],
                 x["split"]["rtl_cycles"], x["split"]["model_cycles"], x["speedup"],
                 x["model_kind"], x["seconds"]] for x in r["models"]]
        md += [markdown_table(["model", "GEMMs (MxKxN)", "whole RTL", "whole model",
                               "split RTL", "split model", "whole/split", "MAC model",
                               "sim s"], rows), ""]
        proofs = {x["proof"] for x in r["models"] if x["proof"]}
        md += [f"Twin proof: {p}" for p in sorted(proofs)] + [""]
    md += ["## Per model and phase", ""]
    for x in d["compare"]:
        md += [compare_markdown(x)]
        if x.get("plot"):
            md += [f"Plot: `{x['plot']}`.", ""]
    return "\n".join(md)
