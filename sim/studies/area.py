"""MAC area study: which designs to synthesize, and the rows of the comparison table.

Every gate-level MAC goes through Yosys's plain ``synth`` flow (it has no ``*`` or
``+`` for ``-booth``/``-arith_tree`` to act on); the behavioural MAC goes through each
of Yosys's own flows, so the table compares our gates with Yosys's best.
"""
from hdl.mac import MacConfig, MULTIPLIER_CHOICES, ADDER_CHOICES
from hdl.flows.synth import FLOWS
from sim.flow_calls import synthesize_jobs

__all__ = ["design_label", "flows_for", "area_rows", "AREA_HEADERS", "all_mac_configs",
           "best_behavioral"]

AREA_HEADERS = ["design", "flow", "transistors", "vs best behav.", "depth", "cells",
                "flops", "iCE40 LUT4", "iCE40 carry", "iCE40 DFF"]


def design_label(cfg):
    sign = {"int4": "signed", "uint4": "unsigned"}.get(cfg.numerics, cfg.numerics)
    if cfg.behavioral:
        arch = ("behavioral (decode, *, negate, +)" if cfg.numerics == "fp4" else
                "behavioral (a*b, +)")
    else:
        arch = f"{cfg.multiplier} + {cfg.adder}, {'fused' if cfg.fused else 'unfused'}"
    return f"{arch}, {sign} W={cfg.acc_width} P={cfg.pipeline}"


def flows_for(cfg):
    return list(FLOWS) if cfg.behavioral else ["synth"]



def all_mac_configs(*, signed=True, acc_width=16, pipelines=(0,)):
    """Every architecture combination (and the behavioural reference)."""
    out = []
    for pipeline in pipelines:
        for multiplier in MULTIPLIER_CHOICES:
            if multiplier == "behavioral":
                out.append(MacConfig(signed=signed, acc_width=acc_width,
                                     multiplier=multiplier, pipeline=pipeline))
                continue
            for adder in ADDER_CHOICES:
                for fused in (True, False):
                    out.append(MacConfig(signed=signed, acc_width=acc_width,
                                         multiplier=multiplier, adder=adder, fused=fused,
                                         pipeline=pipeline))
    return out


def synthesize_configs(configs, *, progress=None, executor=None):
    """Synthesize each config through each of its flows: a list of
    ``(config, SynthResult)`` in a stable order. ``executor``: see
    :func:`sim.flow_calls.synthesize_jobs` (default synthesize_many's local thread pool)."""
    jobs, keys = [], []
    for cfg in configs:
        verilog = cfg.verilog()
        for flow in flows_for(cfg):
            jobs.append({"verilog": verilog, "top": "mac", "flow": flow})
            keys.append(cfg)
    results = synthesize_jobs(jobs, progress=progress, executor=executor)
    return list(zip(keys, results))


def _group(cfg):
    """The designs a MAC is compared with: same signedness (or FP4), W and P."""
    return ("fp4" if cfg.numerics == "fp4" else cfg.signed, cfg.acc_width, cfg.pipeline)


def best_behavioral(results):
    """The behavioural result with the fewest transistors, per (signed, W, P); FP4 MACs
    form their own groups, ("fp4", W, P)."""
    best = {}
    for cfg, res in results:
        if cfg.behavioral:
            key = _group(cfg)
            if key not in best or res.transistors < best[key].transistors:
                best[key] = res
    return best


def area_rows(results):
    """Table rows (see :data:`AREA_HEADERS`), sorted by transistors within each group,
    with the ratio against the best behavioural flow of the same (signed, W, P)."""
    best = best_behavioral(results)
    rows = []
    for cfg, res in sorted(results, key=lambda cr: (not cr[0].signed, cr[0].acc_width,
                                                    cr[0].pipeline, cr[1].transistors)):
        ref = best.get(_group(cfg))
        ratio = round(res.transistors / ref.transistors, 3) if ref else None
        ice = res.ice40 or {}
        rows.append([design_label(cfg), res.flow, res.transistors, ratio, res.depth,
                     res.cells, res.flops, ice.get("lut4"), ice.get("carry"),
                     ice.get("dff")])
    return rows
