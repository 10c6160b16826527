"""The `systolic` command line: outputs, and bad input (one line, exit 2, no file)."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def systolic(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "sim.cli", *args], cwd=cwd or ROOT,
                          capture_output=True, text=True, timeout=600)


def test_verilog_mac_writes_deterministic_file(tmp_path):
    a, b = tmp_path / "a.v", tmp_path / "b.v"
    for path in (a, b):
        r = systolic("verilog", "mac", "--unsigned", "--acc-width", "24", "--multiplier",
                     "wallace", "--adder", "sklansky", "--no-fused", "--pipeline", "1",
                     "-o", str(path))
        assert r.returncode == 0, r.stderr
    assert a.read_bytes() == b.read_bytes()
    text = a.read_text()
    assert "module mac(" in text and "output [23:0] acc;" in text
    assert str(tmp_path) not in text and str(ROOT) not in text


def test_verilog_to_stdout():
    r = systolic("verilog", "mac")
    assert r.returncode == 0 and "module mac(" in r.stdout


@pytest.mark.parametrize("args, option", [
    (["--multiplier", "quantum"], "--multiplier"),
    (["--adder", "carry-skip"], "--adder"),
    (["--acc-width", "7"], "--acc-width"),
    (["--acc-width", "65"], "--acc-width"),
    (["--acc-width", "sixteen"], "--acc-width"),
    (["--pipeline", "3"], "--pipeline"),
])
def test_bad_options_one_line_exit_2_no_file(tmp_path, args, option):
    out = tmp_path / "mac.v"
    r = systolic("verilog", "mac", *args, "-o", str(out))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert option in lines[0] and "allowed" in lines[0] or "choose from" in lines[0]
    assert "Traceback" not in r.stderr
    assert not out.exists() and not list(tmp_path.iterdir())


def test_unwritable_output_path(tmp_path):
    target = tmp_path / "missing" / "mac.v"
    r = systolic("verilog", "mac", "-o", str(target))
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "-o" in r.stderr
    assert not target.parent.exists()


def test_unknown_simulator():
    r = systolic("sim", "mac", "--sim", "modelsim")
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1
    assert "--sim" in r.stderr and "verilator" in r.stderr and "icarus" in r.stderr


def test_missing_simulator(tmp_path):
    """Icarus absent from PATH: a one-line error naming the fix."""
    import os
    env = dict(os.environ, PATH=str(tmp_path))      # no iverilog anywhere
    r = subprocess.run([sys.executable, "-m", "sim.cli", "sim", "mac", "--sim", "icarus"],
                       cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "iverilog" in r.stderr


def test_synth_json_unwritable(tmp_path):
    r = systolic("synth", "mac", "--json", str(tmp_path / "nope" / "x.json"))
    assert r.returncode == 2 and "--json" in r.stderr


# ---------------------------------------------------------------- array and gemm

def test_verilog_array_hierarchical(tmp_path):
    out = tmp_path / "array.v"
    r = systolic("verilog", "array", "--rows", "3", "--cols", "5", "--dataflow", "ws",
                 "-o", str(out))
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert text.count("module pe(") == 1 and text.count("module systolic_array (") == 1


def _npy(path, array):
    import numpy as np
    np.save(path, np.asarray(array))
    return str(path)


@pytest.mark.parametrize("make_args, option", [
    (lambda d: ["--random", "2", "2", "2", "--rows", "0"], "--rows"),
    (lambda d: ["--random", "2", "2", "2", "--cols", "257"], "--cols"),
    (lambda d: ["--random", "2", "2", "2", "--dataflow", "rs"], "--dataflow"),
    (lambda d: ["--random", "2", "2", "2", "--sim", "vcs"], "--sim"),
    (lambda d: ["--a", _npy(d / "a.npy", [[1, 2]]), "--b", _npy(d / "b.npy", [[1, 2]])],
     "K mismatch"),
    (lambda d: ["--a", _npy(d / "a.npy", [[1.5]]), "--b", _npy(d / "b.npy", [[1]])],
     "non-integer"),
    (lambda d: ["--a", _npy(d / "a.npy", [[8]]), "--b", _npy(d / "b.npy", [[1]])],
     "out of range"),
    (lambda d: ["--unsigned", "--a", _npy(d / "a.npy", [[-1]]), "--b",
                _npy(d / "b.npy", [[1]])], "out of range"),
    (lambda d: ["--a", _npy(d / "a.npy", [1, 2]), "--b", _npy(d / "b.npy", [[1]])],
     "2-D"),
    (lambda d: ["--a", str(d / "missing.npy"), "--b", _npy(d / "b.npy", [[1]])],
     "--a"),
    (lambda d: ["--a", str(d), "--b", _npy(d / "b.npy", [[1]])], "--a"),
])
def test_gemm_bad_input(tmp_path, make_args, option):
    inputs = tmp_path / "in"
    inputs.mkdir()
    out = tmp_path / "c.npy"
    report = tmp_path / "r.json"
    r = systolic("gemm", *make_args(inputs), "--out", str(out), "--report", str(report))
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and option in lines[0], r.stderr
    assert not out.exists() and not report.exists()


def test_gemm_icarus_end_to_end(tmp_path):
    import json
    import numpy as np
    if shutil.which("iverilog") is None:
        pytest.skip("iverilog not installed (apt-get install iverilog)")
    rng = np.random.default_rng(3)
    A, B = rng.integers(-8, 8, (5, 7)), rng.integers(-8, 8, (7, 3))
    A[0, :] = -8
    B[:, 0] = -8
    out, report = tmp_path / "c.npy", tmp_path / "r.json"
    r = systolic("gemm", "--a", _npy(tmp_path / "a.npy", A), "--b",
                 _npy(tmp_path / "b.npy", B), "--rows", "2", "--cols", "3",
                 "--dataflow", "os", "--sim", "icarus", "--out", str(out),
                 "--report", str(report))
    assert r.returncode == 0, r.stdout + r.stderr
    assert np.array_equal(np.load(out), A @ B) and np.load(out).dtype == np.int64
    data = json.loads(report.read_text())
    assert data["cycles"] == data["model_cycles"]
    for key in ("scalesim_cycles", "macs", "utilization", "sim_seconds"):
        assert key in data
