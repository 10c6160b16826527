"""GEMMs on the flat Amaranth array (:class:`hdl.array_flat.AmaranthArray`) in ``amaranth.sim``:
the same schedule, checks and result as the cocotb path, with no HDL simulator (a
reference for the benches, and a way to start from arbitrary power-up register values)."""
import time

import numpy as np
from amaranth.sim import Simulator

from hdl.array_flat import AmaranthArray
from sim.drivers.gemm import _decode, _pack, build_schedule, check_operands, dense_events

__all__ = ["amaranth_sim_gemm"]


def amaranth_sim_gemm(A, B, config, *, power_up_seed=None):
    """Play ``A @ B`` on :class:`~hdl.array_flat.AmaranthArray` in ``amaranth.sim`` with the
    schedule :mod:`sim.drivers.gemm` uses; returns ``(C, cycles, dict of timings)`` after
    checking the result cycles exactly as the cocotb path does. ``power_up_seed``: fill
    the reset-less registers of the compact OS PEs with random values first (what
    silicon may wake up with), to check that the schedule's flush clears them."""
    A, B = check_operands(A, B, config.mac)
    sched = build_schedule(A, B, config)
    t0 = time.perf_counter()
    dut = AmaranthArray(config.rows, config.cols, config.dataflow, config.mac,
                        double_buffer=config.double_buffer)
    words = {name: [int.from_bytes(r.tobytes(), "little") for r in _pack(lanes, bits)]
             for name, (lanes, bits) in sched.ports.items()}
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    W = config.mac.acc_width
    L = config.out_lanes
    rec = {"cycles": [], "valid": [], "words": []}

    async def bench(ctx):
        ports = [(getattr(dut, name), w) for name, w in words.items()]
        if power_up_seed is not None:
            rng = np.random.default_rng(power_up_seed)
            for pe in dut.pes:
                for reg in getattr(pe, "state", ()):
                    ctx.set(reg, int(rng.integers(0, 1 << len(reg))))
        start = time.perf_counter()
        for t in range(sched.length):
            for sig, w in ports:
                ctx.set(sig, w[t])
            await ctx.tick()
            v = ctx.get(dut.c_valid)
            if v:
                rec["cycles"].append(t)
                rec["valid"].append([(v >> i) & 1 for i in range(L)])
                rec["words"].append(ctx.get(dut.c_out))
        rec["seconds"] = time.perf_counter() - start

    sim.add_testbench(bench)
    setup = time.perf_counter() - t0
    sim.run()
    mask = (1 << W) - 1
    trace = {"cycles": np.array(rec["cycles"], np.int64),
             "valid": np.array(rec["valid"], np.uint8).reshape(-1, L),
             "values": np.array([[(w >> (W * i)) & mask for i in range(L)]
                                 for w in rec["words"]], np.uint64).reshape(-1, L)}
    Cm, last = _decode(sched, dense_events(trace["cycles"], trace["valid"], trace["values"]),
                       config, A.shape[0], B.shape[1])
    return Cm, last, {"seconds": rec["seconds"], "setup_seconds": setup,
                      "simulated_cycles": sched.length}
