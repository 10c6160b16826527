"""``systolic energy mac|pe|array|split``: picojoules from the gates' own switching.

The design is mapped to Nangate45 (:mod:`hdl.flows.gatemap`), simulated on an operand
stream (:mod:`sim.studies.energy_study`) counting every net's toggles, glitches included
by default (unit delay; ``--zero-delay`` for functional toggles only), and priced with
the Liberty file (:mod:`hdl.flows.energy`). ``pe`` is one PE in a 1x1 array playing the
GEMM's schedule. ``--opensta`` also checks the switching energy against OpenSTA.
"""
import json
import sys

from hdl.emit import write_atomic
from .common import (UsageError, add_array_options, add_mac_options, add_split_options,
                     array_config, check_writable, int_in, mac_config, split_config)

DESIGNS = ("mac", "pe", "array", "split")


def register(sub):
    from sim.studies.energy_study import DATASETS
    p = sub.add_parser("energy", help="energy (pJ per MAC) from gate-level switching "
                       "on Nangate45, by category")
    p.add_argument("design", choices=DESIGNS)
    add_mac_options(p)
    add_array_options(p, rows=8, cols=8)
    sp = add_split_options(p)
    sp.add_argument("--mode", default="whole",
                    help="split: the mode to run (whole, h2, v2, quad, tiles; default "
                         "whole); every sub-array gets its own GEMM of --gemm")
    p.add_argument("--data", choices=DATASETS, default="uniform",
                   help="operands: uniform random codes (default), normal values "
                        "quantized (int4 / MXFP4 for fp4), the digits MLP's layer 1, or "
                        "uniform with 50%% / 90%% zeros")
    p.add_argument("--gemm", nargs=3, type=int_in(1, 4096, "gemm"), metavar=("M", "K", "N"),
                   default=None, help="GEMM shape for arrays (default 64 64 64; the pe: "
                                      "16 64 16)")
    p.add_argument("--cycles", type=int_in(10, 10**7, "cycles"), default=2000,
                   help="mac: operand pairs played (default 2000)")
    p.add_argument("--seed", type=int_in(0, 2**31, "seed"), default=0)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--timing", choices=("zero", "unit", "liberty"), default="unit",
                   help="zero delay (functional toggles), unit delay per cell (default; "
                        "glitches counted) or each cell's Liberty delay at its load")
    g.add_argument("--glitch", dest="timing", action="store_const", const="unit",
                   help="= --timing unit")
    g.add_argument("--zero-delay", dest="timing", action="store_const", const="zero",
                   help="= --timing zero")
    p.add_argument("--compare", action="store_true",
                   help="mac: also the behavioural MAC with the same options")
    p.add_argument("--opensta", action="store_true",
                   help="check the switching energy against OpenSTA (needs `sta`)")
    p.add_argument("--json", metavar="FILE", help="write the report as JSON")
    p.add_argument("--md", metavar="FILE", help="write the Markdown table")
    p.set_defaults(func=cmd_energy)


def _progress(desc):
    from tqdm import tqdm
    bar = tqdm(total=None, desc=desc, unit="cycle", leave=False, file=sys.stderr,
               disable=None)

    def update(done, total):
        bar.total = total
        bar.n = done
        bar.refresh()
    return bar, update


def energy_rows(args, progress):
    """``[(label, EnergyReport, pJ per MAC, macs, (verilog, top))]``."""
    from sim.studies import energy_study as es
    mac = mac_config(args)
    try:
        if args.design == "mac":
            out = []
            macs = [mac] + ([mac.replace(multiplier="behavioral")]
                            if args.compare and not mac.behavioral else [])
            for m in macs:
                rep, per = es.mac_energy(m, dataset=args.data, cycles=args.cycles,
                                         timing=args.timing, seed=args.seed,
                                         progress=progress)
                out.append((m.slug, rep, per, rep.cycles, (m.verilog(), "mac")))
            return out
        M, K, N = args.gemm or ((16, 64, 16) if args.design == "pe" else (64, 64, 64))
        if args.design in ("pe", "array"):
            if args.design == "pe":
                args.rows = args.cols = 1
            cfg = array_config(args)
            A, B = es.operands(args.data, M, K, N, cfg.mac, seed=args.seed)
            rep, per = es.array_energy(cfg, A, B, timing=args.timing, progress=progress)
            return [(cfg.slug, rep, per, M * K * N, (cfg.verilog(), "systolic_array"))]
        cfg = split_config(args)
        try:
            subs = cfg.subarrays(cfg.mode(args.mode))
        except ValueError as e:
            raise UsageError(f"--mode: {e}") from None
        jobs = [es.operands(args.data, M, K, N, cfg.mac, seed=args.seed + i)
                for i in range(len(subs))]
        rep, per = es.split_energy(cfg, args.mode, jobs, timing=args.timing,
                                   progress=progress)
        from hdl.split import SPLIT_TOPLEVEL
        return [(f"{cfg.slug}_{args.mode}", rep, per, M * K * N * len(subs),
                 (cfg.verilog(), SPLIT_TOPLEVEL))]
    except ValueError as e:
        if type(e) is not ValueError:
            raise
        raise UsageError(f"--data/--gemm: {e}") from None


def _opensta(label, verilog, top, rep_args):
    from hdl.flows.energy import capture
    from hdl.flows.opensta import StaError
    from hdl.flows.sta_power import opensta_power, switching_cross_check
    ports, cycles, warmup, timing = rep_args
    sim, act, model, mapped = capture(verilog, top, ports, cycles=cycles, warmup=warmup,
                                      timing=timing)
    try:
        power = opensta_power(mapped["verilog"], top, mapped["liberty"],
                              period_ns=model.period_ns, wire_load=model.wire_load)
    except StaError as e:
        raise UsageError(f"--opensta: {e}") from None
    return switching_cross_check(sim, act, model, power, period_ns=model.period_ns)


def energy_table(rows):
    """Markdown: one row per design, pJ per MAC by category."""
    from hdl.flows.energy import ENERGY_CATEGORIES
    from sim.studies.tables import markdown_table
    cats = [c for c in ENERGY_CATEGORIES if any(r[1].categories_pj[c] for r in rows)]
    body = []
    for label, rep, per, macs, _ in rows:
        body.append([label, f"{rep.timing} delay", rep.cycles,
                     round(per, 4)] + [round(rep.categories_pj[c] / macs, 4) for c in cats]
                    + [round(rep.toggles_per_net, 3), rep.capture_seconds])
    return markdown_table(["design", "timing", "cycles", "pJ/MAC"] +
                          [f"{c} pJ/MAC" for c in cats] +
                          ["toggles/net/cycle", "capture s"], body)


def cmd_energy(args):
    from hdl.flows.liberty import LibertyError
    for option in ("json", "md"):
        if getattr(args, option):
            check_writable(getattr(args, option), f"--{option}")
    if args.compare and args.design != "mac":
        raise UsageError("--compare: only for the mac design")
    if args.opensta and (getattr(args, "clock_gate", False) or getattr(args, "pe_gate", False)):
        raise UsageError("--opensta: the cross-check is for designs without clock gates; "
                         "drop --clock-gate/--pe-gate or --opensta")
    if args.mode != "whole" and args.design != "split":
        raise UsageError("--mode: only for the split design")
    if args.opensta:
        from hdl.flows.opensta import find_sta
        if find_sta() is None:
            raise UsageError("--opensta: OpenSTA (sta) is not installed; apt-get install "
                             "opensta, or drop --opensta")
    bar, update = _progress("energy")
    try:
        rows = energy_rows(args, update)
    except LibertyError as e:
        raise UsageError(f"liberty: {e}") from None
    finally:
        bar.close()
    md = [f"### Energy of `systolic energy {args.design}` (Nangate45, "
          f"{rows[0][1].voltage} V, {args.data} operands)", "", energy_table(rows)]
    data = {"command": " ".join(["systolic", "energy"] + sys.argv[2:]) if sys.argv[1:2]
            == ["energy"] else "systolic energy", "data": args.data,
            "results": [{"design": label, **rep.to_json(macs=macs)}
                        for label, rep, per, macs, _ in rows]}
    if args.opensta:
        from sim.studies import energy_study as es
        label, rep, per, macs, (verilog, top) = rows[0]
        if args.design == "mac":
            A, B = es.operands(args.data, 16, 64, 16, mac_config(args), seed=args.seed)
            ports, T, warmup = es.mac_stimulus(A, B, args.cycles)
        else:
            raise UsageError("--opensta: only for the mac design here; the bench checks "
                             "the 8x8 array (systolic bench --only energy)")
        check = _opensta(label, verilog, top, (ports, T, warmup, args.timing))
        data["opensta"] = check
        md += ["", f"Switching energy: project {check['project_pj']:.3f} pJ, OpenSTA "
               f"{check['opensta_pj']:.3f} pJ on the same toggles "
               f"(ratio {check['ratio']:.4f}; {check['instances']} instances)."]
    text = "\n".join(md) + "\n"
    print(text)
    if args.json:
        write_atomic(args.json, json.dumps(data, indent=1) + "\n")
    if args.md:
        write_atomic(args.md, text)
    return 0
