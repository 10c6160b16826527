"""``systolic report``, ``sweep`` and ``bench``: the studies that write directories of
tables, JSON and plots."""
import json
import sys
from pathlib import Path

from sim.studies.bench import BENCHES
from sim.studies.reports import PARTS
from sim.studies.sweep_config import STUDIES
from hdl.cache import Cache
from hdl.numerics import NUMERICS
from .cluster import add_scheduler_option, cluster_for, executor_for
from .common import BUILD, UsageError, int_in


def cmd_report(args):
    from sim.studies.reports import write_reports
    out = Path(args.output)
    for option in ("output", "docs"):
        path = getattr(args, option)
        if path and Path(path).exists() and not Path(path).is_dir():
            raise UsageError(f"--{option}: {path} is not a directory")
    if args.sweep_config:
        from sim.studies.sweep_config import load_config, SweepConfigError
        try:
            load_config(args.sweep_config)
        except SweepConfigError as e:
            raise UsageError(f"--sweep-config: {e}")
    from sim.studies.sweep import SweepJobError
    executor = cluster_for(args)
    try:
        problems = write_reports(out, liberty=args.liberty, only=args.only,
                                 sweep_config=args.sweep_config, docs=args.docs,
                                 numerics=args.numerics,
                                 cache=Cache(args.cache) if args.cache else Cache(),
                                 log=lambda m: print(m, file=sys.stderr), executor=executor)
    except SweepJobError as e:
        return _sweep_failed(e, f"no {out}/index.md written")
    finally:
        if executor is not None:
            executor.close()
    print(f"report written to {out}/index.md")
    for problem in problems:
        print(f"systolic: error: {problem}", file=sys.stderr)
    return 2 if problems else 0


def _sweep_failed(e, unwritten):
    """Each failed sweep job on one line, then what was not written; exit status 1."""
    for job, where, error in e.failures:
        print(f"systolic: error: sweep job {json.dumps(job)} ({where}): {error}",
              file=sys.stderr)
    print(f"systolic: error: {e}; the others are cached, {unwritten}", file=sys.stderr)
    return 1


def cmd_sweep(args):
    from sim.studies.sweep import SweepJobError, run_sweep, write_sweep
    from sim.studies.sweep_config import (SweepConfigError, DEFAULT_CONFIG, OVERRIDES,
                                          load_config, parse_config, apply_overrides)
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise UsageError(f"-o: {out} is not a directory")
    overrides = {k: getattr(args, k) for k in OVERRIDES}
    try:
        config = load_config(args.config or DEFAULT_CONFIG)
        config = parse_config(apply_overrides(config, overrides, studies=args.study,
                                              fpga=args.fpga, liberty=args.liberty,
                                              energy=args.energy),
                              "options")
        command = " ".join(["systolic sweep"] + (
            [f"--config {args.config}"] if args.config else []) + [
            f"--{k.replace('_', '-')} {v}" for k, v in overrides.items() if v] + [
            f"--study {s}" for s in args.study or ()] + (
            [] if args.fpga is None else ["--fpga" if args.fpga else "--no-fpga"]) + (
            [] if args.energy is None else ["--energy" if args.energy else "--no-energy"]) + (
            [] if args.liberty is None else [f"--liberty {args.liberty}"]))
        with executor_for(args, workers=args.jobs) as executor:
            res = run_sweep(config, cache=args.cache, executor=executor,
                            log=lambda m: print(m, file=sys.stderr))
    except SweepConfigError as e:
        raise UsageError(str(e))
    except SweepJobError as e:
        return _sweep_failed(e, f"nothing written to {out}/")
    files = write_sweep(res, out, command=command)
    print(f"sweep: {len(res.jobs)} jobs ({res.ran} run, {res.cached} cached) in "
          f"{res.seconds:.1f} s; wrote {len(files)} files to {out}/ (sweep.md, sweep.json, "
          f"CSV, PNG)")
    return 0


def cmd_bench(args):
    from sim.studies.bench import run_bench
    executor = cluster_for(args)
    try:
        return run_bench(BUILD / "bench", only=args.only, executor=executor,
                         skip_slow=args.skip_slow, sim_part=args.sim_part,
                         resume=args.resume)
    finally:
        if executor is not None:
            executor.close()


def cmd_cluster_bench(args):
    from sim.studies.cluster_bench import run_cluster_bench
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise UsageError(f"-o: {out} is not a directory")
    d = run_cluster_bench(out, repeat=args.repeat, log=lambda m: print(m, file=sys.stderr))
    print(f"cluster: overhead {d['overhead_pct']:+.1f}% of the local pool, same results "
          f"{d['same_results']}; speed-up 1/2/4 workers "
          f"{'/'.join(str(r['speedup']) for r in d['scaling'].values())} -> {out}/cluster.md")
    return 0


def register(sub):
    rp = sub.add_parser("report", help="area/timing/FPGA reports with plots")
    rp.add_argument("-o", "--output", default=str(BUILD / "report"), metavar="DIR")
    rp.add_argument("--liberty", metavar="FILE", help="Liberty file (default Nangate45)")
    rp.add_argument("--only", action="append", metavar="PART",
                    choices=PARTS,
                    help="build only these parts (repeatable): tables, sweep, schematic, "
                         "wavefront (default: all)")
    rp.add_argument("--numerics", choices=NUMERICS, default="int4",
                    help="operand format of the tables' MACs, PEs and arrays and of the "
                         "sweep's mac, array and split studies (default int4)")
    rp.add_argument("--sweep-config", metavar="FILE",
                    help="config of the report's sweep (default sim/studies/sweep_default.toml)")
    rp.add_argument("--docs", metavar="DIR",
                    help="also copy the README's pictures into DIR (make docs-images)")
    rp.add_argument("--cache", metavar="DIR",
                    help="keep every result cache (Verilog, Yosys, nextpnr, Liberty, "
                         "sweep) under DIR instead of build/cache (an empty DIR: a cold run)")
    add_scheduler_option(rp)
    rp.set_defaults(func=cmd_report)

    sw = sub.add_parser("sweep", help="design-space sweep (parallel, cached): CSV, JSON, "
                                      "PNG plots")
    sw.add_argument("--config", metavar="FILE.toml",
                    help="sweep config, .toml or .json (default sim/studies/sweep_default.toml)")
    sw.add_argument("-o", "--output", default=str(BUILD / "sweep"), metavar="DIR",
                    help="output directory (default build/sweep)")
    sw.add_argument("--study", action="append", metavar="STUDY",
                    choices=STUDIES,
                    help="run only this study (repeatable): mac, array, split, gemm")
    for option, (key, studies) in (("sizes", ("N,...", "array sizes (square)")),
                                   ("tiles", ("T,...", "split tile sizes")),
                                   ("multiplier", ("M,...", "multiplier architectures")),
                                   ("adder", ("A,...", "adder architectures")),
                                   ("pipeline", ("P,...", "pipeline stages")),
                                   ("dataflow", ("D,...", "array dataflows (ws, os)")),
                                   ("shapes", ("MxKxN,...", "GEMM shapes")),
                                   ("numerics", ("F,...", "operand formats (int4, uint4, "
                                                 "fp4) of the mac, array and split "
                                                 "studies")),
                                   ("precision", ("P,...", "run-time precisions (int4, "
                                                  "w4a8, int8) of the array and gemm "
                                                  "studies; w4a8/int8 on arrays fused "
                                                  "for them"))):
        sw.add_argument(f"--{option}", metavar=key,
                        help=f"{studies}, comma-separated (replaces the config's)")
    fp = sw.add_mutually_exclusive_group()
    fp.add_argument("--fpga", dest="fpga", action="store_true", default=None,
                    help="place and route every MAC/array on the iCE40 (Fmax)")
    fp.add_argument("--no-fpga", dest="fpga", action="store_false")
    en = sw.add_mutually_exclusive_group()
    en.add_argument("--energy", dest="energy", action="store_true", default=None,
                    help="pJ per MAC of every MAC/array from its gate-level switching "
                         "(Nangate45; systolic energy)")
    en.add_argument("--no-energy", dest="energy", action="store_false")
    sw.add_argument("--liberty", metavar="FILE",
                    help="Liberty file for um^2 and delay ('nangate45', a .lib path)")
    sw.add_argument("--jobs", type=int_in(1, 256, "jobs"), default=None, metavar="N",
                    help="worker processes (default: every core)")
    sw.add_argument("--cache", metavar="DIR", default=None,
                    help="cache root for results and tool runs (default build/cache)")
    add_scheduler_option(sw)
    sw.set_defaults(func=cmd_sweep)

    b = sub.add_parser("bench", help="area benchmarks into build/bench (JSON + Markdown)")
    b.add_argument("--only", choices=BENCHES, action="append",
                   help="run only these benchmarks")
    add_scheduler_option(b)
    b.add_argument("--skip-slow", action="store_true",
                   help="sim bench: skip the slowest combinations (never a target row)")
    b.add_argument("--sim-part", choices=["all", "rows", "flags"], default="all",
                   help="sim bench: run only its rows or only the Verilator flag study "
                        "(the other part is kept from build/bench/sim.json)")
    b.add_argument("--resume", action="store_true",
                   help="sim bench: keep the rows build/bench/sim.json has measured and run "
                        "the others")
    b.set_defaults(func=cmd_bench)
    c = sub.add_parser("cluster-bench", help="a sweep on a local Dask cluster of real "
                                            "processes against the local pool (1/2/4 workers)")
    c.add_argument("-o", "--output", default=str(BUILD / "bench"), metavar="DIR",
                   help="output directory (default build/bench)")
    c.add_argument("--repeat", type=int_in(1, 10, "repeat"), default=2, metavar="N",
                   help="timed runs per setting, 1..10 (default 2; medians reported)")
    c.set_defaults(func=cmd_cluster_bench)
