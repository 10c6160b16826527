"""Tables and plots of the GEMM lists and of :func:`sim.studies.workload.compare_workload`.

:func:`gemm_table` lists the GEMMs of a layer and the LM head; :func:`compare_markdown`
renders a whole-vs-split comparison (per GEMM, per stage, totals);
:func:`rtl_markdown` one model's RTL run on its real shapes
(:func:`sim.studies.workload_rtl.check_rtl_shapes`); :func:`plot_compare` draws the
cycles per GEMM (whole, split, SCALE-Sim) and
:func:`plot_batch_sweep` the utilization against the decode batch size.
"""
from pathlib import Path

from sim.studies.tables import markdown_table

__all__ = ["gemm_table", "model_summary", "compare_markdown", "rtl_markdown",
           "plot_compare", "plot_batch_sweep"]


def model_summary(model):
    """One line: the shape of the model as read from its config."""
    m = model
    attn = (f"{m.heads} heads of {m.head_dim}" +
            (f", {m.kv_heads} K/V heads (GQA)" if m.kv_heads != m.heads else ""))
    if m.mla:
        attn = (f"multi-head latent attention: {m.heads} heads, latent rank "
                f"{m.kv_lora_rank}, query " + (f"rank {m.q_lora_rank}" if m.q_lora_rank
                                               else "full rank")
                + f", q/k {m.qk_nope_head_dim}+{m.qk_rope_head_dim} rotary, v "
                f"{m.v_head_dim}")
    mlp = ("gated MLP" if m.gated else "MLP") + f" {m.intermediate}"
    if m.moe:
        mlp = (f"{m.experts} experts, top-{m.experts_per_token}, "
               f"{'gated ' if m.gated else ''}expert MLP {m.expert_intermediate}")
        if m.shared_experts:
            mlp += f", {m.shared_experts} shared experts ({m.shared_expert_intermediate})"
        elif m.shared_expert_intermediate:
            mlp += f", shared expert {m.shared_expert_intermediate}"
        if m.shared_expert_gate:
            mlp += " with a sigmoid gate"
    kinds = m.kinds()
    layers = f"{m.layers} layers"
    if len(kinds) > 1 or kinds[0][0].window is not None:
        layers += " (" + "; ".join(f"{n} {k.describe()}" for k, n in kinds) + ")"
    if m.mtp_layers:
        layers += f", {m.mtp_layers} multi-token-prediction layer(s) not counted"
    return (f"{m.name} ({m.model_type or 'unknown type'}): hidden {m.hidden}, {attn}, "
            f"{mlp}, {layers}, vocabulary {m.vocab}")


def gemm_table(gemms):
    """Markdown table of GEMMs (``sim.models.workload.Gemm``)."""
    rows = [[g.name, g.stage, g.M, g.K, g.N, g.count, g.macs,
             "-" if g.share is None else round(g.share, 4), g.note or "-"] for g in gemms]
    return markdown_table(["GEMM", "stage", "M", "K", "N", "count", "MACs",
                           "tokens/expert (expected)", "note"], rows)


def _cell(text):
    return str(text).replace("|", "\\|")


def compare_markdown(d, *, title=True):
    """Markdown of one comparison (dict of :func:`compare_workload`)."""
    head = (f"{d['name']}, {d['phase_text']}, {d['array']} {d['dataflow'].upper()} array, "
            f"{d['tile']} tiles" + (", fold overlap" if d["fold_overlap"] else "")
            + (", GQA heads stacked" if d.get("stack_gqa") else "")
            + (f", MLA {d['mla']}" if d.get("mla") else ""))
    md = [f"### {head}", ""] if title else []
    kinds = len(d.get("parts", ())) > 2          # several kinds of layer: say which
    rows = [([r["part"]] if kinds else []) + [
        r["name"], r["stage"], f"{r['M']}x{r['K']}x{r['N']}", r["count"], r["macs"],
        r["scalesim_cycles"], r["whole_cycles"], r["whole_util"], r["split_cycles"],
        r["split_util"], r["speedup"], _cell(r["split_plan"])] for r in d["gemms"]]
    md += [markdown_table((["part"] if kinds else []) + [
        "GEMM", "stage", "MxKxN", "count", "MACs", "SCALE-Sim", "whole", "whole util",
        "split", "split util", "whole/split", "split schedule (alone)"], rows), ""]
    rows = [[s["part"], s["stage"], ", ".join(s["gemms"]), s["scalesim_cycles"],
             s["whole_cycles"], s["whole_util"], s["split_cycles"], s["split_util"],
             s["speedup"], _cell(s["split_plan"])] for s in d["stages"]]
    md += [markdown_table(["part", "stage", "GEMMs", "SCALE-Sim", "whole", "whole util",
                           "split", "split util", "whole/split", "split schedule"], rows),
           ""]
    rows = [[k, d[k]["macs"], d[k]["scalesim_cycles"], d[k]["whole_cycles"],
             d[k]["whole_util"], d[k]["split_cycles"], d[k]["split_util"],
             d[k]["speedup"]] for k in d.get("parts", ["layer", "lm_head"]) + ["model"]]
    counts = d.get("layer_counts") or {"layer": d["layers"]}
    layers = " + ".join(f"{n} {p}{'s' if n > 1 else ''}" for p, n in counts.items())
    md += [markdown_table(["total", "MACs", "SCALE-Sim", "whole", "whole util", "split",
                           "split util", "whole/split"], rows), "",
           f"model = {layers} + LM head (each kind of layer counted on its own). "
           "Cycles from the cycle model "
           "(`sim.models.cycles`, `sim.models.program.program_cycles`); SCALE-Sim: its "
           "analytical formula on the whole array, one GEMM after another.", ""]
    return "\n".join(md)


def rtl_markdown(row):
    """One model's RTL run on its real shapes (a row of
    :func:`sim.studies.workload_rtl.check_rtl_shapes`): per GEMM its whole-array RTL and
    model cycles, then both programs' totals, the model that ran and its proof."""
    gemms = [[g["gemm"], f"{g['M']}x{g['K']}x{g['N']}", g["macs"], g["whole_rtl_cycles"],
              g["whole_model_cycles"], g.get("note") or "full"] for g in row["gemms"]]
    programs = [[name, row[key]["rtl_cycles"], row[key]["model_cycles"],
                 f"{100 * row[key]['utilization']:.2f}%",
                 row[key].get("plan", "one GEMM after another in mode whole")]
                for name, key in (("whole", "whole"), ("split", "split"))]
    out = [markdown_table(["GEMM", "MxKxN", "MACs", "whole RTL cycles", "model cycles",
                           "columns"], gemms), "",
           markdown_table(["program", "RTL cycles", "model cycles", "utilization", "plan"],
                          programs), "",
           f"whole/split: {row['speedup']:.2f}x fewer cycles split; {row['simulator']}, "
           f"{row['path']} path, MAC model: {row['model_kind']} ({row['mac']})"]
    if row.get("proof"):
        out.append(f"twin proof: {row['proof']}")
    return "\n".join(out)


def plot_compare(d, path, caption):
    """Bar chart (log scale): cycles per GEMM group of a layer and the LM head, whole
    array, split array (scheduled alone) and SCALE-Sim; the title gives the totals."""
    from sim.studies.plot import figure, save_figure
    rows = d["gemms"]
    fig, (ax,) = figure(width=max(6.4, 0.55 * len(rows) + 2), height=4.2)
    width = 0.27
    xs = range(len(rows))
    for k, (key, label) in enumerate((("scalesim_cycles", "SCALE-Sim (whole)"),
                                      ("whole_cycles", "whole array"),
                                      ("split_cycles", "split array"))):
        ax.bar([x + (k - 1) * width for x in xs], [r[key] for r in rows], width,
               label=label)
    ax.set_yscale("log")
    ax.set_xticks(list(xs), [f"{r['name']}\nx{r['count']}" for r in rows], fontsize=7,
                  rotation=45, ha="right")
    ax.set_ylabel("cycles (all instances)")
    t = d["model"]
    ax.set_title(f"{d['name']}, {d['phase_text']}, {d['array']} {d['dataflow'].upper()}, "
                 f"{d['tile']} tiles: model {t['whole_cycles']:,} whole vs "
                 f"{t['split_cycles']:,} split ({t['speedup']:.2f}x)", fontsize=8)
    ax.legend(fontsize=7)
    ax.grid(True, axis="y", alpha=0.3)
    return save_figure(fig, Path(path), caption)


def plot_batch_sweep(sweeps, path, caption, *, title):
    """Utilization (%) against the decode batch size, whole (solid) and split (dashed),
    one colour per model. ``sweeps``: ``{model: [{"batch", "whole_util",
    "split_util"}, ...]}``."""
    from sim.studies.plot import figure, save_figure
    fig, (ax,) = figure(width=6.8, height=4.4)
    for i, (name, rows) in enumerate(sweeps.items()):
        color = f"C{i}"
        bs = [r["batch"] for r in rows]
        ax.plot(bs, [100 * r["whole_util"] for r in rows], "o-", color=color,
                label=f"{name} whole")
        ax.plot(bs, [100 * r["split_util"] for r in rows], "s--", color=color,
                label=f"{name} split")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("decode batch size B")
    ax.set_ylabel("utilization (%), whole model")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6, ncol=2)
    ax.grid(True, which="both", alpha=0.3)
    return save_figure(fig, Path(path), caption)
