"""``systolic bench --only gating``: clock-gating area, the timing cross-check against
OpenSTA, and the gated tile-cycles of a decode layer (``build/bench/gating.{json,md}``).

* **area** (target: the gates cost at most 3% of the array): the same array with and
  without ``clock_gate`` through the CMOS flow (transistors, :mod:`hdl.flows.synth`) and
  the Nangate45 Liberty flow (um^2; the gates are ``CLKGATE_X1``). Designs: the 16x16 WS
  array (one gate per row), the 16x16 and 32x32 split WS arrays of 8x8 tiles (one gate
  per tile). The 64x64 array of 16x16 tiles is not synthesized here (hours of Yosys on 2
  cores); each gate is a fixed cost, so its share there is the 32x32 share divided by the
  ratio of PEs per gate (256 against 64: four times smaller).
* **timing**: :func:`hdl.flows.opensta.timing_check` on the MAC, both PEs, the 8x8 WS and
  OS arrays and an 8x8 split array of 4x4 tiles (skipped without ``sta``).
* **idle**: :func:`sim.studies.workload_gating.layer_gating` of a decode layer of every
  shipped model (batch 1, context 512) on the 64x64 split array of 16x16 tiles.
* **token** (target: energy per token gated <= 0.5x ungated):
  :func:`sim.studies.token_energy.decode_token_energy` of the same layers, whole vs
  split, ungated, gated per tile, and gated per tile and inside every PE
  (:mod:`hdl.pe_gate`), from two gate-level captures of a 16x16 tile, plain and with
  the PE gates (about 2 minutes each, then cached).
"""
import time
from dataclasses import replace

from hdl.array import ArrayConfig, pe_verilog
from hdl.emit import write_atomic
from hdl.mac import MacConfig
from hdl.split import SplitConfig
from sim.studies.tables import markdown_table, write_json

__all__ = ["run_gating_bench", "AREA_TARGET", "AREA_DESIGNS", "TOKEN_TARGET"]

#: Nangate45 ``CLKGATE_X1`` area (um^2).
ICG_UM2 = 3.458
#: Largest gating area, as a fraction of the ungated array.
AREA_TARGET = 0.03
AREA_DESIGNS = {
    "array_ws_16x16 (gate per row)": lambda g: (ArrayConfig(16, 16, "ws", clock_gate=g),
                                                "systolic_array"),
    "split_ws_16x16_t8 (gate per tile)": lambda g: (SplitConfig(16, 16, 8, clock_gate=g),
                                                    "splittable_array"),
    "split_ws_32x32_t8 (gate per tile)": lambda g: (SplitConfig(32, 32, 8, clock_gate=g),
                                                    "splittable_array"),
    "array_ws_16x16 (gates in every PE)": lambda g: (ArrayConfig(16, 16, "ws", pe_gate=g),
                                                     "systolic_array"),
}


def _area(log):
    from hdl.flows.liberty import liberty_area
    from hdl.flows.synth import synthesize
    rows = []
    for name, make in AREA_DESIGNS.items():
        row = {"design": name}
        for gated in (False, True):
            config, top = make(gated)
            log(f"gating bench: {name} clock_gate={gated} (Yosys, minutes)")
            verilog = config.verilog()
            lib = liberty_area(verilog, top)
            cmos = synthesize(verilog, top=top, ice40=False)
            key = "gated" if gated else "plain"
            row[key] = {"slug": config.slug, "um2": lib["area_um2"],
                        "transistors": cmos.transistors, "delay_ps": lib["delay_ps"],
                        "icg": lib["cells_by_type"].get("CLKGATE_X1", 0),
                        "flops": lib["flops"], "cmos_flops": cmos.flops}
        p, g = row["plain"], row["gated"]
        # the gates' own cells, apart from ABC's reshuffling of the rest
        row["icg_um2_pct"] = round(100 * g["icg"] * ICG_UM2 / p["um2"], 3)
        row["um2_pct"] = round(100 * (g["um2"] / p["um2"] - 1), 3)
        row["transistors_pct"] = round(100 * (g["transistors"] / p["transistors"] - 1), 3)
        row["met"] = max(row["um2_pct"], row["transistors_pct"]) <= 100 * AREA_TARGET
        log(f"gating bench: {name}: {row}")
        rows.append(row)
    return rows


def _timing(log):
    from hdl.flows.opensta import find_sta, timing_check
    if find_sta() is None:
        return None
    mac = MacConfig()
    designs = [("MAC", mac.verilog(), "mac"), ("WS PE", pe_verilog(mac, "ws"), "pe"),
               ("OS PE", pe_verilog(mac, "os"), "pe"),
               ("8x8 WS array", ArrayConfig(8, 8, "ws").verilog(), "systolic_array"),
               ("8x8 OS array", ArrayConfig(8, 8, "os").verilog(), "systolic_array"),
               ("8x8 split WS, 4x4 tiles", SplitConfig(8, 8, 4).verilog(),
                "splittable_array")]
    out = []
    for name, verilog, top in designs:
        log(f"gating bench: OpenSTA on {name}")
        r = timing_check(verilog, top)
        out.append({"design": name, **{k: r[k] for k in (
            "ours_ps", "opensta_ps", "diff_pct", "fanout_buffers", "cells", "sta_version",
            "opensta_endpoint")}})
    return out


def _idle():
    from sim.models.workload import Phase, builtin_models, load_config, model_shape
    from sim.studies.workload_gating import layer_gating
    config = SplitConfig(64, 64, 16, MacConfig())
    out = []
    for name in builtin_models():
        cfg, label = load_config(name)
        model = model_shape(cfg, name=label)
        kinds = model.kinds()
        for kind, _ in kinds:                 # DeepSeek: dense and MoE layers apart
            g = layer_gating(model, Phase("decode", context=512), config, kind=kind)
            out.append({"model": label + (f" ({kind.describe()})" if len(kinds) > 1 else ""),
                        **{f"{k}_{f}": v[f] for k, v in g.items()
                           for f in ("cycles", "gated_fraction")},
                        "split_clocked": g["split"]["clocked"],
                        "split_gated": g["split"]["gated"]})
    return out


#: Largest energy per token gated over ungated.
TOKEN_TARGET = 0.5


def _token(log):
    from sim.models.workload import builtin_models, load_config, model_shape
    from sim.studies.token_energy import decode_token_energy, tile_energy
    config = SplitConfig(64, 64, 16, MacConfig())
    log("gating bench: 16x16 tile energy, plain and with clock gates in every PE "
        "(gate-level captures, about 2 minutes each uncached)")
    tile = tile_energy(config)
    pe_tile = tile_energy(replace(config, pe_gate=True))
    rows = []
    for name in builtin_models():
        cfg, label = load_config(name)
        rows.append(decode_token_energy(model_shape(cfg, name=label), config, context=512,
                                        tile=tile, pe_tile=pe_tile))
    q = [r["ratios"] for r in rows]
    return {"tile": tile.to_json(), "pe_tile": pe_tile.to_json(), "models": rows,
            "target": TOKEN_TARGET,
            "met_split_pe_gated_vs_split_ungated": all(
                x["split_pe_gated_over_split_ungated"] <= TOKEN_TARGET for x in q),
            "met_whole_pe_gated_vs_whole_ungated": all(
                x["whole_pe_gated"] <= TOKEN_TARGET for x in q),
            "met_split_gated_vs_whole_ungated": all(x["split_gated"] <= TOKEN_TARGET for x in q),
            "met_split_gated_vs_split_ungated": all(
                x["split_gated_over_split_ungated"] <= TOKEN_TARGET for x in q),
            "met_whole_gated_vs_whole_ungated": all(x["whole_gated"] <= TOKEN_TARGET for x in q)}


def _token_md(t):
    from sim.studies.token_energy import token_markdown

    def yes(v):
        return "met" if v else "not met"
    return ["## Energy per token, one decode layer (batch 1, context 512; 64x64 split "
            "array, 16x16 tiles)", "", token_markdown(t["models"]), "",
            f"Target gated <= {t['target']}x ungated: with clock gates in every PE (and "
            f"per tile), split vs split ungated "
            f"{yes(t['met_split_pe_gated_vs_split_ungated'])}, whole vs whole ungated "
            f"{yes(t['met_whole_pe_gated_vs_whole_ungated'])}; with tile gates alone, split "
            f"gated vs whole ungated {yes(t['met_split_gated_vs_whole_ungated'])}, split "
            f"gated vs split ungated {yes(t['met_split_gated_vs_split_ungated'])}, whole "
            f"gated vs whole ungated {yes(t['met_whole_gated_vs_whole_ungated'])}. Per "
            f"layer: the mean over the model's layers (of every kind); LM head not counted.",
            ""]


def run_gating_bench(outdir, *, command="systolic bench --only gating", log=print):
    start = time.monotonic()
    data = {"command": command, "timing": _timing(log), "idle": _idle(),
            "token": _token(log), "area": _area(log)}
    data["seconds"] = round(time.monotonic() - start, 1)
    write_json(outdir / "gating.json", data)
    md = [f"# Clock gating and timing (`{command}`)", ""]
    md += ["## Gating area (target <= 3% of the array)", "",
           "Whole designs synthesized with and without the gates (`+%`: the difference, "
           "which includes ABC mapping the rest a little differently, and flops that "
           "separate clocks keep Yosys from merging); `CLKGATE %`: the gate cells alone.",
           "", markdown_table(
               ["design", "transistors", "gated", "+%", "um^2", "gated", "+%", "gates",
                "CLKGATE %", "met"],
               [[r["design"], r["plain"]["transistors"], r["gated"]["transistors"],
                 r["transistors_pct"], r["plain"]["um2"], r["gated"]["um2"], r["um2_pct"],
                 r["gated"]["icg"], r["icg_um2_pct"], "yes" if r["met"] else "no"]
                for r in data["area"]]), ""]
    if data["timing"]:
        md += ["## NLDM timing vs OpenSTA (same netlist, no wire load)", "", markdown_table(
            ["design", "ours ps", "OpenSTA ps", "diff %", "fanout buffers"],
            [[t["design"], t["ours_ps"], t["opensta_ps"], t["diff_pct"],
              t["fanout_buffers"]] for t in data["timing"]]), ""]
    md += ["## Decode layer on the 64x64 split array, 16x16 tiles (batch 1, context 512)",
           "", markdown_table(["model", "whole cycles", "whole gated", "split cycles",
                               "split gated"],
                              [[d["model"], d["whole_cycles"],
                                f"{100 * d['whole_gated_fraction']:.1f}%",
                                d["split_cycles"],
                                f"{100 * d['split_gated_fraction']:.1f}%"]
                               for d in data["idle"]]), ""]
    md += _token_md(data["token"])
    write_atomic(outdir / "gating.md", "\n".join(md) + "\n")
    return data
