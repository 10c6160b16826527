"""W4A8 and int8 GEMMs on small fusable arrays in RTL (Icarus; one on Verilator):
C == numpy's int64 product and RTL cycles == the cycle model, on random and extreme
operands; the int4 mode of a fusable array has the plain array's cycles and results;
bad input is refused."""
import shutil

import numpy as np
import pytest

from hdl.array import ArrayConfig
from hdl.mac import MacConfig, ConfigError
from sim.drivers.operands import precision_operands
from sim.drivers.gemm import run_gemm, run_gemms
from sim.models.cycles import model_cycles

pytestmark = pytest.mark.skipif(not shutil.which("iverilog"), reason="needs Icarus")


def _extremes(M, K, N, precision, seed):
    """Operands drawn from the extreme values only (-128, 127, -8, 7, 0, -1)."""
    rng = np.random.default_rng(seed)
    a_vals = [-8, 7, 0, -1] if precision == "int4" else [-128, 127, -8, 7, 0, -1]
    b_vals = [-128, 127, -8, 7, 0, -1] if precision == "int8" else [-8, 7, 0, -1]
    return rng.choice(a_vals, (M, K)), rng.choice(b_vals, (K, N))


@pytest.mark.parametrize("dataflow,fold_overlap", [("ws", False), ("ws", True),
                                                   ("os", False), ("os", True)])
def test_every_precision_exact(dataflow, fold_overlap, tmp_path):
    cfg = ArrayConfig(rows=4, cols=4, dataflow=dataflow, fold_overlap=fold_overlap,
                      fusion="int8", mac=MacConfig(acc_width=20))
    for precision in ("int4", "w4a8", "int8"):
        jobs = [precision_operands(3, 6, 11, 5, precision),
                _extremes(5, 9, 6, precision, 4),
                # all -128 / -8: the largest products, K longer than one pass at W = 20
                (np.full((3, 40), -128 if precision != "int4" else -8),
                 np.full((40, 2), -128 if precision == "int8" else -8))]
        for (A, B), r in zip(jobs, run_gemms(jobs, cfg, simulator="icarus",
                                             build_root=tmp_path, precision=precision)):
            assert np.array_equal(r.C, A @ B), (precision, A.shape)
            assert r.cycles == r.model_cycles


def test_int4_mode_matches_the_plain_array(tmp_path):
    """Same cycles and results as the plain int4 array (every tag 0)."""
    rng = np.random.default_rng(8)
    A, B = rng.integers(-8, 8, (7, 9)), rng.integers(-8, 8, (9, 6))
    for dataflow in ("ws", "os"):
        plain = ArrayConfig(rows=4, cols=3, dataflow=dataflow)
        fused = ArrayConfig(rows=4, cols=3, dataflow=dataflow, fusion="w4a8")
        p = run_gemm(A, B, plain, simulator="icarus", build_root=tmp_path)
        f = run_gemm(A, B, fused, simulator="icarus", build_root=tmp_path)
        assert np.array_equal(p.C, f.C) and np.array_equal(f.C, A @ B)
        assert p.cycles == f.cycles == p.model_cycles


def test_throughput_per_precision_model():
    """Digit steps per MAC: WS int8 folds are 4x as many (exactly 1/4 of int4's MACs
    per cycle when every fold streams the same M); OS tiles stream 4x the K."""
    M = K = N = 64
    int4 = model_cycles(M, K, N, 16, 16, "ws", k_chunk=511)
    int8 = model_cycles(M, K, N, 16, 16, "ws", k_chunk=511, digits=4)
    w4a8 = model_cycles(M, K, N, 16, 16, "ws", k_chunk=511, digits=2)
    assert int8 == 4 * int4 and w4a8 == 2 * int4
    os4 = model_cycles(M, K, N, 16, 16, "os", k_chunk=511)
    os8 = model_cycles(M, K, N, 16, 16, "os", k_chunk=511, digits=4)
    # 16 tiles of K + 16 cycles then the last drain: (15*(K+16) + K + 30)
    assert os4 == 15 * 80 + 64 + 30 and os8 == 15 * (256 + 16) + 256 + 30


@pytest.mark.skipif(not shutil.which("verilator") and not shutil.which(
    "verilator_bin"), reason="needs Verilator")
def test_int8_on_verilator(tmp_path):
    from sim.runner import SIMULATORS
    if "verilator" not in SIMULATORS:
        pytest.skip("no verilator simulator")
    cfg = ArrayConfig(rows=4, cols=4, dataflow="os", fusion="int8",
                      mac=MacConfig(acc_width=24))
    A, B = _extremes(6, 10, 5, "int8", 9)
    r = run_gemm(A, B, cfg, simulator="verilator", build_root=tmp_path, precision="int8")
    assert np.array_equal(r.C, A @ B) and r.cycles == r.model_cycles


def test_bad_input_refused():
    cfg = ArrayConfig(rows=4, cols=4, fusion="w4a8")
    with pytest.raises(ValueError, match="built with fusion w4a8"):
        run_gemm(np.zeros((2, 2), int), np.zeros((2, 2), int), cfg, simulator="icarus",
                 precision="int8")
    with pytest.raises(ValueError, match=r"A\[0,1\] = 128 is out of range"):
        run_gemm(np.array([[1, 128]]), np.zeros((2, 2), int), cfg, simulator="icarus",
                 precision="w4a8")
    with pytest.raises(ValueError, match=r"B\[0,0\] = 8 is out of range"):
        run_gemm(np.array([[1, 127]]), np.full((2, 2), 8), cfg, simulator="icarus",
                 precision="w4a8")
    with pytest.raises(ValueError, match="needs 4 rows|4 rows for"):
        run_gemm(np.ones((2, 2), int), np.ones((2, 2), int),
                 ArrayConfig(rows=2, cols=2, dataflow="ws", fusion="int8"),
                 simulator="icarus", precision="int8")
    with pytest.raises(ConfigError, match="fusion"):
        ArrayConfig(fusion="int16")


def test_cli_bad_precision(capsys):
    from sim.cli import main
    assert main(["gemm", "--precision", "int8", "--fusion", "w4a8", "--random", "2", "2",
                 "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fusion int8" in err[0]
