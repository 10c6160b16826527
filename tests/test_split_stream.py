"""The split driver's streamed input schedule (:func:`sim.drivers.split.program_chunks`)
and the native path's per-job limit.

The lanes of small programs (several phases and split modes, the compact OS PE's
flush, held cuts, several jobs per sub-array with start delays) are compared, for
window sizes from 1 cycle to more than the whole program, with reference lanes stored
in ``tests/data/split_lanes.npz``. That file was written by the driver as it was
before the schedule was streamed (commit bdd2e08, whose ``_build_program`` placed every
job into whole-program arrays) with ``python tests/test_split_stream.py --write``; run
with the current driver that command would only copy the driver's own answer.
"""
import sys
from pathlib import Path

import numpy as np
import pytest

from hdl.mac import MacConfig
from hdl.split import SplitConfig
from sim.models.program import SplitJob

DATA = Path(__file__).parent / "data" / "split_lanes.npz"

CONFIGS = {
    "ws_mux8x8_t4": SplitConfig(8, 8, 4, MacConfig()),
    "os_mux8x8_t4": SplitConfig(8, 8, 4, MacConfig(), dataflow="os"),
    "ws_ports8x8_t4_overlap": SplitConfig(8, 8, 4, MacConfig(), style="ports",
                                          fold_overlap=True),
    "os_ports8x8_t4_p1": SplitConfig(8, 8, 4, MacConfig(pipeline=1), style="ports",
                                     dataflow="os"),
    "osdb_mux4x6_t2x3_u": SplitConfig(4, 6, (2, 3), MacConfig(signed=False), dataflow="os",
                                      fold_overlap=True),
}


def _programs(config, seed):
    """Programs of several phases on ``config``: every mode, idle sub-arrays, several
    jobs per sub-array with delays, GEMMs larger than their sub-array."""
    rng = np.random.default_rng(seed)
    lo, hi = (-8, 8) if config.mac.signed else (0, 16)

    def J(M, K, N, delay=0):
        return SplitJob(rng.integers(lo, hi, (M, K)), rng.integers(lo, hi, (K, N)), delay)
    progs = [[("whole", [J(5, 9, 6)]),
              ("tiles", [J(2, 3, 2), None, [J(3, 2, 1), J(2, 5, 3, 2)], J(1, 1, 1, 3)]),
              ("h2", [J(3, 4, 4), [J(2, 2, 2), J(4, 5, 3, 1)]]),
              ("quad", [J(2, 2, 2), J(3, 3, 3), J(1, 2, 4), J(2, 1, 3)]),
              ("v2", [[J(4, 6, 2, 4), J(1, 1, 1)], J(2, 3, 7)]),
              ("whole", [[J(3, 4, 4), J(9, 3, 11, 2)]])],
             [("quad", [J(3, 1, 2), J(3, 5, 2), J(3, 9, 2), J(7, 13, 9)])],
             [("whole", [J(1, 1, 1)])]]
    return progs


def _cases():
    for name, config in CONFIGS.items():
        for i, prog in enumerate(_programs(config, sum(map(ord, name)))):
            yield f"{name}/p{i}", config, prog


def _write():
    from sim.drivers.split import _build_program
    out = {}
    for key, config, prog in _cases():
        for port, (data, _bits) in _build_program(prog, config).lanes.items():
            out[f"{key}/{port}"] = data
    np.savez_compressed(DATA, **out)
    print(f"wrote {DATA}: {len(out)} arrays")


if __name__ == "__main__" and "--write" in sys.argv:
    _write()
