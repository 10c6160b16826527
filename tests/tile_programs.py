"""A host program shared by the tile's RTL tests on both paths (tests/test_tile.py on
cocotb, tests/test_tile_native.py on the native player): every error code, then a good
GEMM, and the checks of its records."""
import numpy as np

from hdl.tile import Mem, TileError
from sim.drivers.tile import c_reads, gemm_step, layout_a, layout_b, write_step
from sim.models.tile import GemmCommand, error_cycles, gemm_error, tile_cycles


def error_program(cfg, no_fit_k):
    """``(steps, bad, cmd)``: one command per error code (``bad``: {code: command};
    ``no_fit_k``: a K whose A blocks do not fit ``cfg``'s depth), writes to a bank and an
    address out of range and a read of no memory (ADDR_RANGE), then A and B of a 4x4x4
    GEMM ``cmd``, a write while it runs (BUSY), the GEMM again, and its C read back."""
    bad = {TileError.MODE: GemmCommand(4, 4, 4, mode=2),
           TileError.SHAPE: GemmCommand(4, 0, 4),
           TileError.NO_FIT: GemmCommand(4, no_fit_k, 4),
           TileError.OVERLAP: GemmCommand(8, 4, 4, a_stride=2)}
    steps = []
    for code, c in bad.items():
        assert gemm_error(c, cfg)[0] == code
        steps.append(gemm_step(c, cfg))
    steps.append(write_step([Mem.A], [1], [0], [5]))                  # bank 1 of 1
    steps.append(write_step([Mem.C], [0], [cfg.c_depth], [5]))        # one past the end
    steps.append({"op": "read", "mem": [3], "bank": [0], "addr": [0]})
    A, B = np.full((4, 4), 7), np.full((4, 4), -8)
    cmd = GemmCommand(4, 4, 4)
    steps.append(write_step(*layout_a(A, cfg, cmd)))
    steps.append(write_step(*layout_b(B, cfg, cmd)))
    steps.append(dict(gemm_step(cmd, cfg), poke=1))                   # a WRITE while busy
    steps.append(gemm_step(cmd, cfg))
    steps.append({"op": "read", **dict(zip(("mem", "bank", "addr"), c_reads(cfg, cmd)))})
    return steps, bad, cmd


def check_error_records(recs, bad, cmd, cfg):
    """The records of :func:`error_program`: each error code at the model's cycle, the
    three ADDR_RANGE steps, BUSY on the poke after the GEMM's own cycles."""
    for (code, bad_cmd), rec in zip(bad.items(), recs):
        assert (rec["error"], rec["err_code"]) == (1, code)
        assert rec["cycles"] == error_cycles(bad_cmd, cfg)
    for rec in recs[4:7]:
        assert (rec["error"], rec["err_code"]) == (1, TileError.ADDR_RANGE)
    assert (recs[9]["error"], recs[9]["err_code"]) == (1, TileError.BUSY)
    assert recs[9]["cycles"] == tile_cycles(cmd, cfg).cycles
