"""cocotb bench for ``splittable_array``: plays programs made by :mod:`sim.split_gemm`.

The environment variable ``SYSTOLIC_SPLIT_PROGRAMS`` names a JSON file::

    {"outputs": [["c_valid", "c_out", L, W], ["c_valid_x", "c_out_x", L2, W]],
     "programs": [{"input": "<p>_in.npz", "output": "<p>_out.npz", "length": T}, ...]}

A program is one stretch of cycles with several GEMMs on several sub-arrays and any
number of split changes in it (the split ports ``row_cut``/``col_cut`` are ordinary
input ports of the schedule). Each input ``.npz`` holds, per input port of the DUT, a
``uint8 [T, bytes]`` array: the port's value in each cycle as little-endian bytes. For
each program the bench holds ``rst`` for two cycles (all inputs 0) -- the only reset;
nothing resets between the jobs and split changes inside a program -- then plays cycles
0..T-1 on a 10 ns clock, acting 2 ns before each rising edge (reads the outputs the
previous edge produced, then writes the inputs the next edge samples). For output pair
i it writes ``cycles_i`` (int64: cycle t whose edge produced the row), ``valid_i``
(uint8 [n, L]) and ``values_i`` (uint64 [n, L]) for every cycle with some valid bit
set, plus ``seconds``. Same fast I/O as :mod:`sim.array_tb` (immediate writes only on
changes, one read of each valid vector per cycle, values only when valid).
"""
import json
import os
import time

import numpy as np

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import Timer

PROGRAMS_ENV = "SYSTOLIC_SPLIT_PROGRAMS"
# The fast port I/O is shared with the plain array's bench.
from sim.array_tb import PERIOD_NS, _changes, _lanes, _save, _setter  # noqa: E402


@cocotb.test()
async def run_programs(dut):
    spec_path = os.environ.get(PROGRAMS_ENV)
    if not spec_path:
        raise RuntimeError(f"{PROGRAMS_ENV} is not set; run this bench through "
                           f"sim.split_gemm")
    with open(spec_path) as f:
        spec = json.load(f)
    outs = [(getattr(dut, v)._handle.get_signal_val_binstr,
             getattr(dut, o)._handle.get_signal_val_binstr, int(L), int(W))
            for v, o, L, W in spec["outputs"]]
    rst_set, _ = _setter(dut.rst)
    step = Timer(PERIOD_NS, unit="ns")
    dut.clk.value = 0
    await Timer(1, unit="ns")
    Clock(dut.clk, PERIOD_NS, unit="ns", impl="gpi").start(start_high=False)
    await Timer(PERIOD_NS // 2 - 2, unit="ns")

    for prog in spec["programs"]:
        T = int(prog["length"])
        with np.load(prog["input"]) as data:
            names = sorted(data.files)
            setters = [_setter(getattr(dut, name)) for name in names]
            per_cycle = _changes(data, names, setters, T)
        for setter, conv in setters:
            setter(conv(0))
        rst_set(1)
        await step
        await step
        rst_set(0)
        rec = [([], [], []) for _ in outs]
        t0 = time.perf_counter()
        for t in range(T):
            for setter, value in per_cycle[t]:
                setter(value)
            await step
            for (read_v, read_o, _, _), (cyc, vw, ow) in zip(outs, rec):
                v = read_v()
                if "1" in v:
                    cyc.append(t)
                    vw.append(v)
                    ow.append(read_o())
        seconds = time.perf_counter() - t0
        arrays = {"seconds": np.array(seconds)}
        for i, ((_, _, L, W), (cyc, vw, ow)) in enumerate(zip(outs, rec)):
            arrays[f"cycles_{i}"] = np.array(cyc, dtype=np.int64)
            arrays[f"valid_{i}"] = np.array([[int(b) for b in reversed(v)] for v in vw],
                                            dtype=np.uint8).reshape(len(cyc), L)
            arrays[f"values_{i}"] = _lanes([int(w, 2) for w in ow], W, L)
        _save(prog["output"], **arrays)
        dut._log.info("program: %d cycles in %.2fs", T, seconds)
