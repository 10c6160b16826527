"""The `systolic` command line: outputs, and bad input (one line, exit 2, no file)."""
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
