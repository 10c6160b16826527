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


@pytest.fixture(scope="module")
def reference():
    with np.load(DATA) as d:
        return {k: d[k] for k in d.files}


def _concat(chunks, ports):
    parts = list(chunks)
    return {name: np.concatenate([c[name][0] for c in parts]) for name in ports}, parts


@pytest.mark.parametrize("key,config,prog", list(_cases()), ids=[k for k, _, _ in _cases()])
def test_windows_equal_the_whole_program_lanes(key, config, prog, reference):
    from sim.drivers.split import _build_program, program_chunks, program_lanes
    built = _build_program(prog, config)
    whole = program_lanes(built)
    want = {k.rsplit("/", 1)[1]: v for k, v in reference.items()
            if k.rsplit("/", 1)[0] == key}
    assert set(whole) == set(want) == set(built.ports)
    for name, (data, bits) in whole.items():
        assert data.dtype == np.uint8 and bits == built.ports[name][1]
        assert np.array_equal(data, want[name]), name
    T = built.length
    assert T == len(want["a_in"])
    for window in (1, 7, 64, T - 1, T, T + 5):
        got, parts = _concat(program_chunks(built, window=window), built.ports)
        assert [len(c["a_in"][0]) for c in parts] == \
            [min(window, T - t) for t in range(0, T, window)]
        for name in built.ports:
            assert np.array_equal(got[name], want[name]), (window, name)


def test_window_must_be_positive():
    from sim.drivers.split import _build_program, program_chunks
    config = CONFIGS["ws_mux8x8_t4"]
    built = _build_program([("whole", [SplitJob(np.ones((2, 2), int), np.ones((2, 2), int))])],
                           config)
    with pytest.raises(ValueError, match="window"):
        next(program_chunks(built, window=0))


def test_native_limit_applies_to_the_largest_job(monkeypatch):
    """A split program is streamed: the native path's in-memory limit bounds its largest
    job's schedule (cycles x its sub-array's input lanes), not the whole program."""
    from sim.models.program import job_cycles, program_cycles
    from sim.native import run as native_run
    config = CONFIGS["ws_mux8x8_t4"]
    big, small = (20, 30, 16), (3, 4, 5)
    prog = [("whole", [[small, small]]), ("quad", [small, big, None, [small, small]])]
    cycles, lanes, shape = native_run.largest_job(prog, config)
    (quad1,) = [s for s in config.subarrays("quad") if s.index == 1]
    assert shape == big and cycles == job_cycles(*big, quad1, config)
    assert lanes == 3 * 4 + 2 * 4           # 4x4 WS sub-array: a_in, a_valid, a_swap; w_in, w_en
    # run_split's form: a SplitMode and one entry (or None) per sub-array
    assert native_run.largest_job([(config.mode("quad"), [None, big, small])], config) == \
        (cycles, lanes, big)
    whole_lanes = native_run.input_lanes(native_run.split_layout(config))
    total = program_cycles(prog, config)
    assert total * whole_lanes > 2 * cycles * lanes
    monkeypatch.setattr(native_run, "NATIVE_MAX_LANE_BYTES", cycles * lanes)
    with pytest.raises(native_run.PathLimitError):          # the whole-program rule
        native_run.check_limits("native", total, whole_lanes, "program 0")
    native_run.check_limits("native", total, whole_lanes, "program 0",
                            job=(cycles, lanes, shape))    # every job fits
    monkeypatch.setattr(native_run, "NATIVE_MAX_LANE_BYTES", cycles * lanes - 1)
    with pytest.raises(native_run.PathLimitError) as e:
        native_run.check_limits("native", total, whole_lanes, "program 0",
                                job=(cycles, lanes, shape))
    msg = str(e.value)
    assert "\n" not in msg and "GEMM 20x30x16" in msg and f"{cycles * lanes:,} bytes" in msg
    assert "native path's limit" in msg and "split that GEMM into smaller jobs" in msg
    # run_programs_native refuses it before building anything (operands: zeros)
    ops = [("whole", [[SplitJob(np.zeros((3, 4), int), np.zeros((4, 5), int))]]),
           ("quad", [None, SplitJob(np.zeros((20, 30), int), np.zeros((30, 16), int))])]
    with pytest.raises(native_run.PathLimitError, match="program 0: its GEMM 20x30x16"):
        native_run.run_programs_native([ops], config, simulator="verilator")
    # the cocotb limit still counts the program's cycles
    monkeypatch.setattr(native_run, "COCOTB_MAX_CYCLES", total - 1)
    with pytest.raises(native_run.PathLimitError, match="cocotb path's limit"):
        native_run.check_limits("cocotb", total, whole_lanes, "program 0",
                                job=(cycles, lanes, shape))
