"""cocotb bench for ``splittable_array``: plays programs made by :mod:`sim.drivers.split`.

The environment variable ``SYSTOLIC_SPLIT_PROGRAMS`` names a JSON file::

    {"outputs": [["c_valid", "c_out", L, W], ["c_valid_x", "c_out_x", L2, W]],
     "programs": [{"input": "<p>_in.npz", "output": "<p>_out.npz", "length": T}, ...]}

A program is one stretch of cycles with several GEMMs on several sub-arrays and any
number of split changes in it (the split ports ``row_cut``/``col_cut`` are ordinary
input ports of the schedule). Each input ``.npz`` holds, per input port of the DUT, a
``uint8 [T, bytes]`` array: the port's value in each cycle as little-endian bytes. For
each program the bench holds ``rst`` for two cycles (all inputs 0) -- the only reset;
nothing resets between the jobs and split changes inside a program -- then plays cycles
0..T-1 on a 10 ns clock, acting at each falling edge (reads the outputs the previous
rising edge produced, then writes the inputs the next one samples). For output pair
i it writes ``cycles_i`` (int64: cycle t whose edge produced the row), ``valid_i``
(uint8 [n, L]) and ``values_i`` (uint64 [n, L]) for every cycle with some valid bit
set, plus ``seconds``. Same fast I/O as :mod:`sim.tb.array` (immediate writes only on
changes, one read of each valid vector per cycle, values only when valid).
"""
import numpy as np

import cocotb

PROGRAMS_ENV = "SYSTOLIC_SPLIT_PROGRAMS"
# The reset, clock and fast port I/O are the plain array's bench's.
from sim.tb.array import _save, player  # noqa: E402


def _save_program(dut, prog, arrays, seconds, cpu_seconds):
    _save(prog["output"], seconds=np.array(seconds), **arrays)
    dut._log.info("program: %d cycles in %.2fs", int(prog["length"]), seconds)


run_programs = cocotb.test()(player(
    PROGRAMS_ENV, "programs",
    lambda spec: [(v, o, int(L), int(W)) for v, o, L, W in spec["outputs"]],
    _save_program, "run_programs"))
