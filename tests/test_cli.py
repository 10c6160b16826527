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


@pytest.mark.parametrize("args, option, allowed", [
    (["--multiplier", "quantum"], "--multiplier", ["choose from", "'dadda'", "'booth'"]),
    (["--adder", "carry-skip"], "--adder", ["choose from", "'ripple'", "'kogge-stone'"]),
    (["--acc-width", "7"], "--acc-width", ["allowed: 8..64"]),
    (["--acc-width", "65"], "--acc-width", ["allowed: 8..64"]),
    (["--acc-width", "sixteen"], "--acc-width", ["allowed: 8..64"]),
    (["--pipeline", "3"], "--pipeline", ["allowed: 0..2"]),
])
def test_bad_options_one_line_exit_2_no_file(tmp_path, args, option, allowed):
    out = tmp_path / "mac.v"
    r = systolic("verilog", "mac", *args, "-o", str(out))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    # the line names the option, repeats the bad value and says what is allowed
    assert option in lines[0] and args[1] in lines[0], lines[0]
    assert all(a in lines[0] for a in allowed), lines[0]
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


# ---------------------------------------------------------------- gemm --split

SPLIT8 = ["--rows", "8", "--cols", "8", "--tile", "4"]


def _in_process(argv, capsys):
    """``systolic ARGV`` in this process (fast; the exit-2 paths never simulate)."""
    from sim.cli import main
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _split_inputs(d, shapes, seed=0):
    import numpy as np
    rng = np.random.default_rng(seed)
    args, mats = [], []
    for i, (M, K, N) in enumerate(shapes):
        A, B = rng.integers(-8, 8, (M, K)), rng.integers(-8, 8, (K, N))
        args += ["--a", _npy(d / f"a{i}.npy", A), "--b", _npy(d / f"b{i}.npy", B),
                 "--out", str(d / f"c{i}.npy")]
        mats.append((A, B))
    return args, mats


def test_gemm_split_icarus_end_to_end(tmp_path, capsys):
    """Three different GEMMs at once on an 8x8 array split into 4x4 quadrants (the
    fourth idles), each checked and written; then a jobs file (random, files, null)
    on the left/right halves given as cuts."""
    import json
    import numpy as np
    if shutil.which("iverilog") is None:
        pytest.skip("iverilog not installed (apt-get install iverilog)")
    args, mats = _split_inputs(tmp_path, [(5, 7, 3), (9, 2, 6), (4, 11, 5)])
    report = tmp_path / "r.json"
    code, out, err = _in_process(["gemm", "--split", "quad", *SPLIT8, "--sim", "icarus",
                                  *args, "--report", report], capsys)
    assert code == 0, out + err
    for i, (A, B) in enumerate(mats):
        C = np.load(tmp_path / f"c{i}.npy")
        assert C.dtype == np.int64 and np.array_equal(C, A @ B)
    data = json.loads(report.read_text())
    assert [j["subarray"]["index"] for j in data["jobs"]] == [0, 1, 2]
    assert all(j["cycles"] == j["model_cycles"] and j["matches_numpy"] for j in data["jobs"])
    assert data["cycles"] == max(j["cycles"] for j in data["jobs"])
    assert data["whole_sequential_model_cycles"] > data["cycles"]
    assert "one after another on the whole 8x8 array" in out and "total" in out

    (tmp_path / "sub").mkdir()
    jobs = [{"random": [6, 5, 9], "seed": 4, "out": "r0.npy"},
            {"a": "../a0.npy", "b": "../b0.npy", "out": "r1.npy"}]
    spec = tmp_path / "sub" / "jobs.json"
    spec.write_text(json.dumps({"jobs": jobs}))
    code, out, err = _in_process(["gemm", "--split", "cuts:/1", *SPLIT8, "--style", "ports",
                                  "--sim", "icarus", "--jobs", spec], capsys)
    assert code == 0, out + err
    from hdl.mac import MacConfig
    from sim.drivers.gemm import random_operands
    A, B = random_operands(4, 6, 5, 9, MacConfig())
    assert np.array_equal(np.load(tmp_path / "sub" / "r0.npy"), A @ B)
    assert np.array_equal(np.load(tmp_path / "sub" / "r1.npy"), mats[0][0] @ mats[0][1])


def test_gemm_split_os_icarus(tmp_path, capsys):
    """--dataflow os with --split: two GEMMs on the halves of a 4x4 OS array (compact
    PE), checked, written, cycles == model."""
    import json
    import numpy as np
    if shutil.which("iverilog") is None:
        pytest.skip("iverilog not installed (apt-get install iverilog)")
    args, mats = _split_inputs(tmp_path, [(5, 3, 6), (2, 7, 3)])
    report = tmp_path / "r.json"
    code, out, err = _in_process(["gemm", "--split", "h2", "--rows", "4", "--cols", "4",
                                  "--tile", "2", "--dataflow", "os", "--sim", "icarus",
                                  *args, "--report", report], capsys)
    assert code == 0, out + err
    for i, (A, B) in enumerate(mats):
        assert np.array_equal(np.load(tmp_path / f"c{i}.npy"), A @ B)
    data = json.loads(report.read_text())
    assert data["dataflow"] == "os"
    assert all(j["cycles"] == j["model_cycles"] and j["matches_numpy"] for j in data["jobs"])
    assert "4x4 OS array" in err


def test_gemm_split_mismatch_exit_1(tmp_path, capsys, monkeypatch):
    """A wrong result (injected after the real RTL run) gives exit 1 naming the job,
    the first differing (i, j) and both values."""
    if shutil.which("iverilog") is None:
        pytest.skip("iverilog not installed (apt-get install iverilog)")
    from sim.drivers import split as split_gemm
    real = split_gemm.run_split

    def broken(*a, **kw):
        res = real(*a, **kw)
        res.jobs[1].C[1, 2] += 3
        return res
    monkeypatch.setattr(split_gemm, "run_split", broken)
    args, mats = _split_inputs(tmp_path, [(3, 4, 3), (4, 3, 4)], seed=7)
    code, out, _ = _in_process(["gemm", "--split", "h2", *SPLIT8, "--sim", "icarus", *args],
                               capsys)
    A, B = mats[1]
    want = (A @ B)[1, 2]
    assert code == 1
    assert f"MISMATCH at C[1,2]: RTL {want + 3}, numpy {want}" in out
    assert "job 1:" in out.split("MISMATCH")[0].splitlines()[-1]


def _jobs_file(d, content):
    path = d / "jobs.json"
    path.write_text(content)
    return str(path)


@pytest.mark.parametrize("make_args, message", [
    (lambda d: ["--split", "quad", "--rows", "12", "--cols", "8", "--tile", "4",
                "--jobs", _jobs_file(d, '[{"random": [2, 2, 2]}]')],
     "--split: split mode 'quad' needs an even number of tile rows"),
    (lambda d: ["--split", "thirds", *SPLIT8, "--jobs", _jobs_file(d, "[null]")],
     "unknown split mode"),
    (lambda d: ["--split", "cuts:2/", *SPLIT8, "--jobs", _jobs_file(d, "[null]")],
     "no tile-row boundary 2"),
    (lambda d: ["--split", "cuts:1", *SPLIT8, "--jobs", _jobs_file(d, "[null]")],
     "cuts:ROWS/COLS"),
    (lambda d: ["--split", "quad", "--rows", "8", "--cols", "8", "--tile", "3",
                "--jobs", _jobs_file(d, "[null]")], "--tile: tile 3x3 does not divide"),
    (lambda d: ["--split", "h2", *SPLIT8, *_split_inputs(d, [(2, 2, 2)] * 3)[0]],
     "3 jobs for 2 sub-arrays"),
    (lambda d: ["--split", "whole", *SPLIT8, "--jobs",
                _jobs_file(d, '[{"random": [2, 2, 2]}, {"random": [2, 2, 2]}]')],
     "2 jobs for 1 sub-array"),
    (lambda d: ["--split", "quad", *SPLIT8, "--dataflow", "rs",
                *_split_inputs(d, [(2, 2, 2)])[0]], "--dataflow"),
    (lambda d: ["--split", "quad", *SPLIT8, "--a", str(d / "nope.npy"), "--b",
                _npy(d / "b.npy", [[1]]), "--out", str(d / "c0.npy")], "--a: cannot read"),
    (lambda d: ["--split", "quad", *SPLIT8, "--a", _npy(d / "a.npy", [1, 2]), "--b",
                _npy(d / "b.npy", [[1]]), "--out", str(d / "c0.npy")], "2-D"),
    (lambda d: ["--split", "quad", *SPLIT8, *_split_inputs(d, [(2, 2, 2)])[0], "--a",
                _npy(d / "a.npy", [[8]]), "--b", _npy(d / "b.npy", [[1]]), "--out",
                str(d / "c9.npy")], "job 1 (" ),
    (lambda d: ["--split", "quad", *SPLIT8, "--a", _npy(d / "a.npy", [[1, 2]]), "--b",
                _npy(d / "b.npy", [[1, 2]]), "--out", str(d / "c0.npy")], "K mismatch"),
    (lambda d: ["--split", "quad", *SPLIT8, "--a", _npy(d / "a.npy", [[1]]), "--out",
                str(d / "c0.npy")], "--b: 1 --a but 0 --b"),
    (lambda d: ["--split", "quad", *SPLIT8, *_split_inputs(d, [(2, 2, 2)] * 2)[0][:-2]],
     "--out: 2 jobs but 1 --out"),
    (lambda d: ["--split", "quad", *SPLIT8, "--a", _npy(d / "a.npy", [[1]]), "--b",
                _npy(d / "b.npy", [[1]]), "--out", str(d / "c0.npy"), "--a",
                _npy(d / "a.npy", [[1]]), "--b", _npy(d / "b.npy", [[1]]), "--out",
                str(d / "c0.npy")], "--out: "),
    (lambda d: ["--split", "quad", *SPLIT8, "--jobs", _jobs_file(d, "{not json")],
     "is not JSON"),
    (lambda d: ["--split", "quad", *SPLIT8, "--jobs", str(d / "missing.json")],
     "--jobs: cannot read"),
    (lambda d: ["--split", "quad", *SPLIT8, "--jobs",
                _jobs_file(d, '[{"random": [2, 2, 2], "out": "c0.npy", "sede": 1}]')],
     "unknown key 'sede'"),
    (lambda d: ["--split", "quad", *SPLIT8, "--jobs",
                _jobs_file(d, '[{"random": [2, 0, 2], "out": "c0.npy"}]')],
     "random must be [M, K, N]"),
    (lambda d: ["--split", "quad", *SPLIT8, "--random", "2", "2", "2"], "--random: not with"),
    (lambda d: ["--random", "2", "2", "2", "--tile", "4"], "--tile: only with --split"),
    (lambda d: ["--a", _npy(d / "a.npy", [[1]]), "--b", _npy(d / "b.npy", [[1]]),
                "--a", _npy(d / "a.npy", [[1]]), "--b", _npy(d / "b.npy", [[1]])],
     "--a: given 2 times"),
    (lambda d: ["--split", "quad", *SPLIT8, "--sim", "icarus", "--jobs",
                _jobs_file(d, '[{"random": [2, 2, 2], "out": "c0.npy"}]'), "--report",
                str(d / "missing" / "r.json")], "--report"),
])
def test_gemm_split_bad_input(tmp_path, capsys, make_args, message):
    """One line, exit 2, no output file (no C of any job, no report)."""
    d = tmp_path / "in"
    d.mkdir()
    report = tmp_path / "r.json"
    argv = make_args(d)
    if "--report" not in argv:
        argv = [*argv, "--report", str(report)]
    before = {p.name for p in d.iterdir()}
    code, out, err = _in_process(["gemm", *argv], capsys)
    assert code == 2, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in err, err
    assert not report.exists()
    assert {p.name for p in d.iterdir()} == before           # no C written
    assert not list(d.glob("c*.npy"))


def test_gemm_split_bad_input_subprocess(tmp_path):
    """The installed entry point: one line on stderr, exit 2, no file."""
    out = tmp_path / "c.npy"
    r = systolic("gemm", "--split", "quad", "--rows", "6", "--cols", "8", "--tile", "4",
                 "--a", _npy(tmp_path / "a.npy", [[1]]), "--b", _npy(tmp_path / "b.npy", [[1]]),
                 "--out", str(out))
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "--tile" in r.stderr, r.stderr
    assert not out.exists()


def test_verilog_and_synth_of_the_split_array(tmp_path):
    out = tmp_path / "split.v"
    r = systolic("verilog", "split", "--rows", "4", "--cols", "6", "--tile-rows", "2",
                 "--tile-cols", "3", "--dataflow", "os", "-o", str(out))
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert "module splittable_array" in text and text.count("module pe(") == 1
    bad = tmp_path / "bad.v"
    r = systolic("verilog", "split", "--rows", "8", "--cols", "6", "--tile", "4", "-o",
                 str(bad))
    assert r.returncode == 2 and not bad.exists()
    assert len(r.stderr.strip().splitlines()) == 1 and "does not divide" in r.stderr
    r = systolic("synth", "split", "--rows", "2", "--cols", "2", "--tile", "1",
                 "--dataflow", "ws", "--breakdown")
    assert r.returncode == 0, r.stderr
    assert "split_config" in r.stdout and "splittable_array" in r.stdout


def test_synth_fpga_too_big_prints_the_rest_then_exits_2(monkeypatch, capsys):
    """A design that does not fit the FPGA: the other tables, then one line, exit 2."""
    import hdl.flows.fpga
    from sim.cli import main

    def too_big(verilog, top, device="up5k", **kw):
        raise hdl.flows.fpga.FpgaFitError(f"{top} needs 9000 logic cells; the iCE40 {device} "
                                    f"has 5280")
    monkeypatch.setattr(hdl.flows.fpga, "ice40_fmax", too_big)
    assert main(["synth", "mac", "--fpga", "up5k"]) == 2
    out, err = capsys.readouterr()
    assert "### Area of" in out and "transistors" in out
    errors = [line for line in err.splitlines() if line.startswith("systolic: error:")]
    assert errors == ["systolic: error: --fpga: mac needs 9000 logic cells; the iCE40 up5k "
                      "has 5280"]


def test_synth_fpga_place_and_route():
    r = systolic("synth", "mac", "--fpga", "up5k")
    assert r.returncode == 0, r.stderr
    assert "iCE40 UP5K place and route" in r.stdout and "Fmax MHz" in r.stdout


@pytest.mark.parametrize("argv, flag", [
    (["verilog", "array", "--rows", "4", "--cols", "4", "--dataflow", "ws", "--compact",
      "--fold-overlap"], "--fold-overlap: overlapping folds needs the double-buffered PE"),
    (["verilog", "split", "--rows", "4", "--cols", "4", "--tile", "3"], "--tile: tile 3x3"),
    (["verilog", "split", "--rows", "4", "--cols", "4", "--tile", "2", "--dataflow", "ws",
      "--compact"], "--compact: the splittable WS array needs the double-buffered PE"),
])
def test_config_errors_name_the_flag(argv, flag, capsys, tmp_path):
    """Generator errors name a config field; the CLI reports its own flag for it."""
    out = tmp_path / "x.v"
    from sim.cli import main
    assert main([*argv, "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"systolic: error: {flag}"), err
    assert not out.exists()


def test_flag_for_maps_fields_to_flags():
    from sim.cli.common import flag_for
    assert flag_for("acc_width") == "--acc-width"
    assert flag_for("double_buffer") == "--compact"
    assert flag_for("rows") == "--rows"
