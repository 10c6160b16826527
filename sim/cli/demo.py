"""``systolic demo`` (``make demo``): the end-to-end tour, from one MAC's Verilog to GEMMs on
the whole and the split array and the area table."""
import time

from hdl.emit import write_atomic
from hdl.mac import MacConfig
from sim.drivers.gemm import random_operands
from .common import BUILD, ROOT, int_in, simulators
from .simulate import run_mac_benches
from .synth import synth_table, synth_provenance


def demo_split(sims, label, *, size=16, tile=8, seed=2027):
    """The demo's split run: four different GEMMs at once on the quadrants of a
    splittable WS array, then one after another on the whole array (one simulator run),
    each checked against numpy. Icarus when present: it builds this design in seconds
    and the run is a few hundred cycles (a Verilator build takes minutes)."""
    import numpy as np
    from hdl.split import SplitConfig
    from sim.models.program import SplitJob
    from sim.drivers.split import run_programs
    config = SplitConfig(size, size, tile, MacConfig())
    sim = "icarus" if "icarus" in sims else sims[0]
    h = size // 2
    shapes = ((h, h, h), (13, 5, 7), (4, 3 * h, h), (h + 1, 3, 2 * h + 5))
    rng = np.random.default_rng(seed)
    jobs = [SplitJob(*random_operands(rng, *shape, config.mac)) for shape in shapes]
    print(f"{label} four different GEMMs at once on a {size}x{size} splittable WS array "
          f"(--split quad: four {h}x{h} sub-arrays) with {sim}, each checked against numpy, "
          f"then one after another on the whole array")
    quad, whole = run_programs([[("quad", jobs)], [("whole", [list(jobs)])]], config,
                               simulator=sim)
    bad = 0
    for j, r in zip(jobs, quad.jobs):
        ok = np.array_equal(r.C, j.A @ j.B) and r.cycles == r.model_cycles
        bad += not ok
        print(f"      {'PASS' if ok else 'FAIL'}: {'x'.join(map(str, r.shape))} on sub-array "
              f"{r.subarray.index}: {r.cycles} cycles (model {r.model_cycles})")
    ok = all(np.array_equal(r.C, j.A @ j.B) for j, r in zip(jobs, whole.jobs))
    bad += not ok
    print(f"      split: {quad.cycles} cycles for all four (model {quad.model_cycles}); the "
          f"whole array one after another: {whole.cycles} cycles (model "
          f"{whole.model_cycles}{'' if ok else ', WRONG RESULT'}) -> "
          f"{whole.cycles / quad.cycles:.1f}x fewer cycles split")
    return bad


def cmd_demo(args):
    import numpy as np
    from sim.studies.area import all_mac_configs
    from hdl.array import ArrayConfig
    from sim.drivers.gemm import run_gemm
    start = time.monotonic()
    out = BUILD / "demo"
    out.mkdir(parents=True, exist_ok=True)
    sims = simulators(None)
    step = "[{}/6]".format

    cfg = MacConfig()
    path = out / "mac.v"
    write_atomic(path, cfg.verilog())
    print(f"{step(1)} Verilog of the default MAC ({cfg.slug}) -> {path.relative_to(ROOT)}")
    print(f"{step(2)} cocotb MAC bench against the Python model (256 pairs, resets, wrap)")
    failures = run_mac_benches(cfg, sims)

    array = ArrayConfig(rows=args.rows, cols=args.cols, dataflow="os", mac=cfg,
                        fold_overlap=True)
    path = out / "array.v"
    t = time.monotonic()
    text = array.verilog()
    write_atomic(path, text)
    print(f"{step(3)} Verilog of a {array.rows}x{array.cols} OS array (double-buffered for "
          f"fold overlap) -> "
          f"{path.relative_to(ROOT)} ({len(text) / 1024:.0f} KiB, {time.monotonic() - t:.1f} s)")

    M = K = N = args.gemm
    sim = "verilator" if "verilator" in sims else sims[0]
    print(f"{step(4)} random {M}x{K}x{N} GEMM on the RTL array with {sim}, checked "
          f"against numpy (the first run builds the simulator: minutes for 16x16)")
    rng = np.random.default_rng(2026)
    A, B = random_operands(rng, M, K, N, cfg)
    res = run_gemm(A, B, array, simulator=sim)
    ok = np.array_equal(res.C, A @ B)
    failures += not ok
    print(f"      {'PASS' if ok else 'FAIL'}: C {'matches' if ok else 'differs from'} numpy; "
          f"{res.cycles} cycles (model {res.model_cycles}, SCALE-Sim {res.scalesim_cycles}),"
          f" utilization {res.utilization:.1%}, {res.cycles / res.sim_seconds:,.0f} "
          f"cycles/s in {sim}")

    failures += demo_split(sims, step(5))

    print(f"{step(6)} area: our gate-level MACs against Yosys's behavioural flows "
          "(signed, W=16, P=0)")
    configs = [c for c in all_mac_configs() if c.behavioral or c.fused or
               c.multiplier == "dadda"]
    results, table = synth_table(configs, title="MAC area, signed W=16, P=0")
    print(table)
    print("\n" + synth_provenance(results))
    write_atomic(out / "mac_area.md", table + "\n\n" + synth_provenance(results) + "\n")
    print(f"\ndemo finished in {time.monotonic() - start:.0f} s; outputs in "
          f"{out.relative_to(ROOT)}/")
    return 1 if failures else 0


def register(sub):
    d = sub.add_parser("demo", help="the end-to-end tour (what `make demo` runs)")
    d.add_argument("--rows", type=int_in(1, 256, "rows"), default=16, metavar="R")
    d.add_argument("--cols", type=int_in(1, 256, "cols"), default=16, metavar="C")
    d.add_argument("--gemm", type=int_in(1, 4096, "gemm"), default=64, metavar="N",
                   help="size of the random N x N x N GEMM (default 64)")
    d.set_defaults(func=cmd_demo)
