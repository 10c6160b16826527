"""Area of the split logic: the splittable array against the unsplit array of the same
size, in the Yosys CMOS flow, with a per-boundary-feature breakdown."""
import time

from hdl.fusion import TAGS
from hdl.mac import MacConfig
from hdl.split import SplitConfig, FEATURES, SPLIT_TOPLEVEL

__all__ = ["split_area_overhead", "split_area_jobs"]


def _analytic_counts(config):
    """Boundary gates the generator writes (before Yosys/abc optimise them); the ports
    style has no activation or weight muxes (OS: "w_mux" is the mux on B, "psum_cut"
    the cut of the drain chain)."""
    tr, tc, gr, gc = config.grid
    n, W, R, C = config.mac.width, config.mac.acc_width, config.rows, config.cols
    tags = len(TAGS[config.fusion])      # the digit tags cross column boundaries with A
    muxes = config.style == "mux"
    if config.dataflow == "os":
        cut = sum(1 for r in range(1, R) for c in range(C - 1)
                  if r % tr == 0 or (c + 1) % tc == 0)
        return {"act_mux": {"mux2": (gc - 1) * R * (n + 1 + tags) if muxes else 0},
                "psum_cut": {"and2": cut * (W + config.double_buffer)},
                "w_mux": {"mux2": (gr - 1) * C * n if muxes else 0}}
    return {"act_mux": {"mux2": (gc - 1) * R * (n + 2 + tags) if muxes else 0},
            "psum_cut": {"and2": (gr - 1) * C * (W + 1)},
            "w_mux": {"mux2": (gr - 1) * C * (n + 1) if muxes else 0}}


def _delta_by_type(base, split, cost):
    """``{cell type: {"cells", "transistors"}}`` of split minus base (nonzero only)."""
    out = {}
    for t in sorted(set(base.cells_by_type) | set(split.cells_by_type)):
        d = split.cells_by_type.get(t, 0) - base.cells_by_type.get(t, 0)
        if d:
            out[t] = {"cells": d, "transistors": d * cost.get(t, 0)}
    return out


def split_area_jobs(rows, cols, tile, mac=None, *, style="mux", flow="synth", dataflow="ws",
                    fold_overlap=False, fusion="none"):
    """The two syntheses (:func:`hdl.flows.synth.synthesize_many` jobs: the unsplit and
    the splittable array) that :func:`split_area_overhead` without ``breakdown`` runs."""
    from hdl.array import array_verilog, TOPLEVEL
    mac = mac or MacConfig()
    cfg = SplitConfig(rows, cols, tile, mac, style, fold_overlap=fold_overlap,
                      dataflow=dataflow, fusion=fusion)
    return [{"verilog": array_verilog(rows, cols, dataflow, mac,
                                      double_buffer=cfg.double_buffer, fusion=fusion),
             "top": TOPLEVEL, "flow": flow, "ice40": False},
            {"verilog": cfg.verilog(), "top": SPLIT_TOPLEVEL, "flow": flow, "ice40": False}]


def split_area_overhead(rows, cols, tile, mac=None, *, style="mux", breakdown=True,
                        flow="synth", dataflow="ws", fold_overlap=False, cache=True,
                        fusion="none"):
    """Synthesize the splittable array and the unsplit array of the same size (Yosys
    flow ``flow``, CMOS gates, remembered in ``cache``); returns a dict with both, the overhead in
    transistors and cells (absolute and %), the extra edge-port bits, the config bits,
    and (``breakdown``) the overhead of each boundary feature alone (one synthesis
    each), plus the analytic gate counts. Seconds are wall time of each synthesis
    (0 when cached). ``fusion``: both arrays built of the fused digit PE
    (:mod:`hdl.fusion`; the split one routes its tags with A)."""
    from hdl.array import array_verilog, TOPLEVEL
    from hdl.flows.synth import synthesize, CMOS_COST
    mac = mac or MacConfig()
    cfg = SplitConfig(rows, cols, tile, mac, style, fold_overlap=fold_overlap,
                      dataflow=dataflow, fusion=fusion)

    def synth(text, top):
        t = time.monotonic()
        r = synthesize(text, top=top, flow=flow, ice40=False, cache=cache)
        return r, (0.0 if r.cached else round(time.monotonic() - t, 1))

    base, base_s = synth(array_verilog(rows, cols, dataflow, mac, double_buffer=cfg.double_buffer,
                                       cache=cache, fusion=fusion), TOPLEVEL)
    split, split_s = synth(cfg.verilog(cache=cache), SPLIT_TOPLEVEL)
    ports = cfg.ports()
    base_bits = sum(b for k, (_, b) in ports.items() if not k.endswith("_x")
                    and k not in ("row_cut", "col_cut"))
    extra = {k: b for k, (_, b) in ports.items() if k.endswith("_x")}
    cfg_bits = {k: ports[k][1] for k in ("row_cut", "col_cut") if k in ports}

    def pct(a, b):
        return round(100.0 * (a - b) / b, 3)
    out = {
        "array": f"{rows}x{cols}", "style": style, "dataflow": dataflow,
        "tile": "x".join(map(str, cfg.grid[:2])),
        "flow": flow,
        "base": {"transistors": base.transistors, "cells": base.cells, "flops": base.flops,
                 "seconds": base_s},
        "split": {"transistors": split.transistors, "cells": split.cells,
                  "flops": split.flops, "seconds": split_s},
        "transistor_overhead_pct": pct(split.transistors, base.transistors),
        "cell_overhead_pct": pct(split.cells, base.cells),
        "extra_transistors": split.transistors - base.transistors,
        "extra_cells": split.cells - base.cells,
        "port_bits_base": base_bits, "extra_port_bits": sum(extra.values()),
        "extra_ports": extra, "config_bits": cfg_bits,
        "config_flops": 0,
        # The cut bits are ports; held in a register they would cost one flop each.
        "config_register_transistors": sum(cfg_bits.values()) * CMOS_COST["$_DFF_P_"],
        "analytic_gates": _analytic_counts(cfg),
        "delta_by_type": _delta_by_type(base, split, CMOS_COST),
    }
    if breakdown and style == "mux":
        parts = {}
        for feat in FEATURES:
            r, s = synth(cfg.verilog(features=(feat,), cache=cache), SPLIT_TOPLEVEL)
            parts[feat] = {"transistors": r.transistors - base.transistors,
                           "cells": r.cells - base.cells,
                           "transistor_pct": pct(r.transistors, base.transistors),
                           "seconds": s}
        out["breakdown"] = parts
    return out
