"""``systolic gemm --numerics mxfp4`` and ``systolic digits``: end to end on Icarus, the
exit-1 path of a wrong partial sum, and bad input (one line, exit 2, no file)."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sim.drivers import blocked
from sim.models.mx import exact_matmul, quantize_mx

ROOT = Path(__file__).resolve().parents[1]
ICARUS = shutil.which("iverilog") is not None


def _in_process(argv, capsys):
    from sim.cli import main
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _npy(path, array, dtype=np.float32):
    np.save(path, np.asarray(array, dtype=dtype))
    return str(path)


@pytest.mark.skipif(not ICARUS, reason="Icarus is not installed")
def test_mxfp4_gemm_icarus_end_to_end(tmp_path, capsys):
    """5x40x3 (a short last block, one all-zero block of B): C.npy is the exact product
    of the quantized operands rounded to float64, the report carries the check and the
    quantization error against the float product."""
    rng = np.random.default_rng(5)
    A = rng.standard_normal((5, 40)).astype(np.float32)
    B = (rng.standard_normal((40, 3)) * 100).astype(np.float32)
    B[32:, 1] = 0
    a, b = _npy(tmp_path / "a.npy", A), _npy(tmp_path / "b.npy", B)
    out, report = tmp_path / "c.npy", tmp_path / "r.json"
    code, stdout, err = _in_process(
        ["gemm", "--numerics", "mxfp4", "--a", a, "--b", b, "--rows", "2", "--cols", "3",
         "--dataflow", "ws", "--sim", "icarus", "--out", out, "--report", report], capsys)
    assert code == 0, stdout + err
    ref = exact_matmul(quantize_mx(A, axis=1), quantize_mx(B, axis=0)).to_float()
    C = np.load(out)
    assert C.dtype == np.float64 and np.array_equal(C, ref)
    r = json.loads(report.read_text())
    want = A.astype(np.float64) @ B.astype(np.float64)
    err_want = np.linalg.norm(ref - want) / np.linalg.norm(want)
    assert r["matches_reference"] is True and r["k_blocks"] == 2
    assert r["zero_blocks"] == {"A": 0, "B": 1}
    assert r["quantization_error"] == pytest.approx(err_want, rel=1e-12)
    assert 0.01 < r["quantization_error"] < 0.3
    assert r["cycles"] == r["model_cycles"] > 0
    assert "C matches the exact product" in stdout and f"{err_want:.4g}" in stdout
    assert (r["path"], r["model"]) == ("cocotb", "gate")        # auto: a short GEMM
    # the same blocks on the native path (memory file, Icarus player): the same C
    native_out, native_report = tmp_path / "c_native.npy", tmp_path / "r_native.json"
    code, stdout, err = _in_process(
        ["gemm", "--numerics", "mxfp4", "--a", a, "--b", b, "--rows", "2", "--cols", "3",
         "--dataflow", "ws", "--sim", "icarus", "--path", "native", "--out", native_out,
         "--report", native_report], capsys)
    assert code == 0, stdout + err
    assert np.array_equal(np.load(native_out), C)
    rn = json.loads(native_report.read_text())
    assert (rn["path"], rn["model"]) == ("native", "gate") and rn["matches_reference"]
    assert rn["cycles"] == r["cycles"] and "native path" in stdout


def test_mxfp4_gemm_wrong_partial_sum_exits_1(tmp_path, capsys, monkeypatch):
    """A runner that returns one partial sum off by one quarter: exit 1, the element
    named; the numpy model of the array stands in for the simulator."""
    def broken(config, simulator, **_):
        model = blocked.model_runner("mxfp4")

        def run(jobs):
            out = model(jobs)
            C, _ = out[-1]
            C = C.copy()
            C[1, 2] += 1
            return [(c, _FakeResult()) for c, _ in out[:-1]] + [(C, _FakeResult())]
        run.choose = lambda jobs: ("cocotb", "gate")
        return run
    monkeypatch.setattr("sim.paths.gemm_runner", broken)
    monkeypatch.setattr("sim.cli.mxgemm.simulators", lambda requested: ["icarus"])
    code, stdout, err = _in_process(["gemm", "--numerics", "mxfp4", "--random", "3", "40",
                                     "4", "--seed", "2", "--sim", "icarus"], capsys)
    assert code == 1, stdout + err
    assert "MISMATCH at C[1,2]" in stdout


class _FakeResult:
    cycles = model_cycles = 1
    sim_seconds = 0.0
    path, model, proof = "cocotb", "gate", None


@pytest.mark.parametrize("make_args, message", [
    (lambda d: ["--a", _npy(d / "a.npy", [[1.0, np.nan]]), "--b",
                _npy(d / "b.npy", [[1.0], [2.0]])], "A[0,1] = nan is not a finite"),
    (lambda d: ["--a", _npy(d / "a.npy", [[1.0, 2.0]]), "--b",
                _npy(d / "b.npy", [[1.0], [-np.inf]])], "B[1,0] = -inf is not a finite"),
    (lambda d: ["--a", _npy(d / "a.npy", [[1.0]], np.float64), "--b",
                _npy(d / "b.npy", [[1.0]])], "holds float64; --numerics mxfp4 takes float32"),
    (lambda d: ["--a", _npy(d / "a.npy", [[1]]), "--b", _npy(d / "b.npy", [[1]], np.int8)],
     "--b: "),
    (lambda d: ["--a", _npy(d / "a.npy", [[[1.0]]]), "--b", _npy(d / "b.npy", [[1.0]])],
     "must hold a 2-D matrix"),
    (lambda d: ["--a", _npy(d / "a.npy", [[1.0, 2.0]]), "--b", _npy(d / "b.npy", [[1.0]])],
     "K mismatch"),
    (lambda d: ["--a", _npy(d / "a.npy", np.zeros((2, 0))), "--b",
                _npy(d / "b.npy", np.zeros((0, 2)))], "must not be empty"),
    (lambda d: ["--split", "quad", "--a", _npy(d / "a.npy", [[1.0]]), "--b",
                _npy(d / "b.npy", [[1.0]])], "--split: not with --numerics mxfp4"),
    (lambda d: ["--a", _npy(d / "a.npy", [[1.0]]), "--b", _npy(d / "b.npy", [[1.0]]),
                "--numerics", "fp8"], "argument --numerics: invalid choice: 'fp8'"),
    (lambda d: ["--a", _npy(d / "a.npy", [[1.0, 2.5]]), "--b",
                _npy(d / "b.npy", [[1.0], [6.0]]), "--numerics", "fp4"],
     "A[0,1] = 2.5 is not an FP4 (E2M1) value"),
    (lambda d: ["--a", _npy(d / "a.npy", [[1.0]]), "--b", _npy(d / "b.npy", [[1.0]]),
                "--report", str(d / "missing" / "r.json")], "--report"),
])
def test_mxfp4_gemm_bad_input(tmp_path, capsys, make_args, message):
    d = tmp_path / "in"
    d.mkdir()
    argv = ["gemm", "--numerics", "mxfp4", "--sim", "icarus", *make_args(d)]
    out = tmp_path / "c.npy"
    if "--report" not in argv:
        argv += ["--out", out]
    code, stdout, err = _in_process(argv, capsys)
    assert code == 2, stdout + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in err, err
    assert lines[0].startswith("systolic: error: ")
    assert not out.exists()


def test_mxfp4_bad_input_subprocess(tmp_path):
    """The entry point itself: one line on stderr, exit 2, no file."""
    out = tmp_path / "c.npy"
    r = subprocess.run([sys.executable, "-m", "sim.cli", "gemm", "--numerics", "mxfp4",
                        "--a", _npy(tmp_path / "a.npy", [[np.inf]]), "--b",
                        _npy(tmp_path / "b.npy", [[1.0]]), "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "systolic: error: --a/--b: A[0,0] = inf is not a finite float32; MX scales only "
        "finite values"]
    assert not out.exists()


@pytest.mark.parametrize("argv, message", [
    (["--limit", "0"], "argument --limit: 0 is out of range"),
    (["--numerics", "fp4"], "argument --numerics: invalid choice: 'fp4'"),
    (["--rows", "300"], "argument --rows: 300 is out of range"),
    (["--report", "{tmp}/missing/r.json"], "--report: cannot write"),
])
def test_digits_bad_input(tmp_path, capsys, argv, message):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, stdout, err = _in_process(["digits", *argv], capsys)
    assert code == 2, stdout + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err


@pytest.mark.skipif(not ICARUS, reason="Icarus is not installed")
def test_digits_command_icarus(tmp_path, capsys):
    """``systolic digits`` on 4 test images (int4 on the WS 4x6 array of the array
    tests): exit 0, the accuracy lines, and a report whose numbers agree with them."""
    report = tmp_path / "d.json"
    code, stdout, err = _in_process(["digits", "--numerics", "int4", "--limit", "4",
                                     "--rows", "4", "--cols", "6", "--sim", "icarus",
                                     "--report", report], capsys)
    assert code == 0, stdout + err
    r = json.loads(report.read_text())
    assert r["n_test"] == 4 and r["all_rtl_gemms_match"] is True
    assert set(r["accuracy"]) == {"float32", "int4"}
    assert [g["shape"] for g in r["gemms"]["int4"]] == [[4, 64, 32], [4, 32, 10]]
    assert f"test accuracy {r['accuracy']['int4']:.1%}" in stdout
    assert "PASS: every RTL GEMM equals its exact reference" in stdout


@pytest.mark.skipif(not ICARUS, reason="Icarus is not installed")
def test_digits_on_the_native_path_with_the_twin(capsys):
    """``--path native --model twin``: both formats' GEMMs on the native path with the
    proven twin, still exact, and the output says which path and model ran."""
    code, stdout, err = _in_process(["digits", "--limit", "3", "--rows", "4", "--cols", "6",
                                     "--sim", "icarus", "--path", "native", "--model",
                                     "twin"], capsys)
    assert code == 0, stdout + err
    lines = [x for x in stdout.splitlines() if "(RTL)" in x]
    assert len(lines) == 2
    assert all("PASS" in x and x.endswith("native path, twin model") for x in lines)
