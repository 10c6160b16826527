"""``systolic plan`` (the split scheduler against always-whole and always-finest, cycle
model) and ``systolic overhead`` (the area of the split logic, Yosys)."""
import sys

from hdl.fusion import FUSIONS
from .common import (UsageError, add_array_options, add_mac_options, add_split_options,
                     check_writable, split_config)


def _shape(text):
    """``(M, K, N)``, or ``(M, K, N, precision)`` for ``M,K,N,int8`` (a fused array)."""
    from hdl.fusion import PRECISIONS
    parts = text.lower().replace("x", ",").split(",")
    precision = parts.pop() if len(parts) == 4 and parts[3] in PRECISIONS else None
    try:
        M, K, N = (int(v) for v in parts)
    except ValueError:
        raise UsageError(f"shape {text!r} is not M,K,N or M,K,N,PRECISION (e.g. 16,64,8, "
                         f"16x64x8 or 16,64,8,w4a8; precisions {', '.join(PRECISIONS)})"
                         ) from None
    if min(M, K, N) < 1:
        raise UsageError(f"shape {text!r}: M, K and N must be >= 1")
    return (M, K, N) if precision is None else (M, K, N, precision)


def cmd_plan(args):
    from sim.drivers.schedule import compare_plans
    from sim.studies.tables import markdown_table, write_json
    if args.json:
        check_writable(args.json, "--json")
    shapes = [_shape(s) for s in args.shapes]
    config = split_config(args)
    precisions = {s[3] for s in shapes if len(s) == 4}
    if precisions - {"int4"}:           # the array that runs them (the model is the same)
        import dataclasses
        config = dataclasses.replace(config, fusion="int8" if "int8" in precisions
                                     else "w4a8")
    from sim.models.program import job_cycles
    for s in shapes:
        try:
            job_cycles(*s[:3], (config.rows, config.cols), config, *s[3:])
        except ValueError as e:
            raise UsageError(f"shape {','.join(map(str, s))}: {e}") from None
    plans = compare_plans(shapes, config)
    rows = [[label, plan.cycles, round(plans["whole"].cycles / plan.cycles, 3),
             plan.describe()] for label, plan in plans.items() if plan.cycles != float("inf")]
    rows += [[label, "-", "-", "some job needs more rows than its sub-arrays have"]
             for label, plan in plans.items() if plan.cycles == float("inf")]
    print(f"{len(shapes)} GEMM(s) on a {config.rows}x{config.cols} {config.dataflow.upper()} "
          f"split array ({config.slug}); cycle model, jobs numbered in the order given\n")
    print(markdown_table(["plan", "cycles", "vs whole", "phases (mode: jobs per sub-array)"],
                         rows))
    if args.json:
        write_json(args.json, {"config": config.slug, "shapes": shapes,
                               "plans": {k: {"cycles": None if v.cycles == float("inf")
                                             else v.cycles, "plan": v.describe()}
                                         for k, v in plans.items()}})
    return 0


def cmd_overhead(args):
    from sim.studies.split_area import split_area_overhead
    from sim.studies.tables import write_json
    if args.json:
        check_writable(args.json, "--json")
    import dataclasses
    config = dataclasses.replace(split_config(args), fusion=args.fusion)
    tr, tc, _, _ = config.grid
    if tr != tc:
        raise UsageError("--tile-rows/--tile-cols: the overhead study takes square tiles; "
                         "use --tile")
    print(f"synthesizing {config.slug} and the unsplit array (minutes when not cached)",
          file=sys.stderr)
    out = split_area_overhead(config.rows, config.cols, tr, config.mac, style=config.style,
                              breakdown=not args.no_breakdown, dataflow=config.dataflow,
                              fold_overlap=config.fold_overlap, fusion=config.fusion)
    print(f"split logic of {config.slug}: {out['extra_transistors']:+d} transistors "
          f"({out['transistor_overhead_pct']:+.3f}%), {out['extra_cells']:+d} cells, "
          f"{out['extra_port_bits']} extra edge-port bits over the unsplit "
          f"{out['array']} array ({out['base']['transistors']} transistors)")
    for feature, part in out.get("breakdown", {}).items():
        print(f"  {feature} alone: {part['transistors']:+d} transistors "
              f"({part['transistor_pct']:+.3f}%)")
    if args.json:
        write_json(args.json, out)
    return 0


def register(sub):
    p = sub.add_parser("plan", help="split scheduler vs always-whole and always-finest "
                                    "(cycle model)")
    p.add_argument("shapes", nargs="+", metavar="M,K,N",
                   help="GEMM shapes; M,K,N,PRECISION (int4, w4a8, int8) for a GEMM of that "
                        "precision on the fused array (its digit steps)")
    add_array_options(p, rows=32, cols=32)
    add_split_options(p, "split array options (--dataflow ws by default)")
    add_mac_options(p)
    p.add_argument("--json", metavar="FILE", help="also write the plans as JSON")
    p.set_defaults(func=cmd_plan, dataflow=None)
    o = sub.add_parser("overhead", help="area of the split logic: split vs unsplit array "
                                        "(Yosys)")
    add_array_options(o, rows=8, cols=8)
    add_split_options(o, "split array options (--dataflow ws by default)")
    add_mac_options(o)
    o.add_argument("--no-breakdown", action="store_true",
                   help="skip the per-feature syntheses")
    o.add_argument("--fusion", choices=FUSIONS, default="none",
                   help="both arrays of the fused digit PE (hdl/fusion.py; the split one "
                        "routes the digit tags with A)")
    o.add_argument("--json", metavar="FILE", help="also write the result as JSON")
    o.set_defaults(func=cmd_overhead, dataflow=None)
