"""Formal equivalence (yosys miter + sat) of every gate-level design against its
behavioural reference, and of the checker itself on designs that must fail."""
import functools
import itertools
import os
import re

import pytest

from hdl.emit import to_verilog
from hdl.flows.formal import (EquivResult, InductionInconclusive, equiv_script,
                        prove_equivalent)
from hdl.mac import ADDER_CHOICES, MULTIPLIER_CHOICES, PIPELINES, MacConfig
from hdl.multipliers import MULTIPLIERS, BehavioralMultiplier, Multiplier
from hdl.flows.synth import YosysError

GATE_LEVEL = [m for m in MULTIPLIER_CHOICES if m != "behavioral"]


@functools.lru_cache(maxsize=None)
def behavioral_mac(signed, pipeline, acc_width=16):
    cfg = MacConfig(signed=signed, pipeline=pipeline, acc_width=acc_width,
                    multiplier="behavioral")
    return to_verilog(cfg.build(), name="gold")


@functools.lru_cache(maxsize=None)
def behavioral_multiplier(width, signed):
    return to_verilog(BehavioralMultiplier(width=width, signed=signed), name="gold")


# -- multipliers (combinational: exact for all 2**(2*width) inputs) ---------------------

@pytest.mark.parametrize("width", [4, 6])
@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
@pytest.mark.parametrize("multiplier", list(MULTIPLIERS))
def test_multiplier_equivalent(multiplier, signed, width):
    gate = to_verilog(Multiplier(width=width, signed=signed, multiplier=multiplier),
                      name="gate")
    result = prove_equivalent(behavioral_multiplier(width, signed), "gold", gate, "gate")
    assert result.equivalent, result.counterexample


@pytest.mark.parametrize("adder", ADDER_CHOICES)
def test_multiplier_final_adders_equivalent(adder):
    gate = to_verilog(Multiplier(width=5, signed=True, multiplier="dadda", adder=adder),
                      name="gate")
    assert prove_equivalent(behavioral_multiplier(5, True), "gold", gate, "gate").equivalent


# -- MACs (sequential: k-induction; the pipeline state encodings differ) ----------------
# At P=0 every multiplier x adder x fused x signedness combination is proved (64). The
# pipeline registers (the cuts, the valid bits that carry the constants) depend on the
# multiplier, fusion and signedness but not on which carry-propagate adder sums the
# rows, so for P=1 and P=2 every multiplier x fused x signedness is proved with the
# adders rotated through (32 more; each adder appears at each P). Set
# SYSTOLIC_FULL_FORMAL=1 for the whole 192-proof cross product (about 2x the time).

def _mac_matrix():
    full = os.environ.get("SYSTOLIC_FULL_FORMAL") == "1"
    cases = []
    for i, (multiplier, fused, signed) in enumerate(itertools.product(
            GATE_LEVEL, (True, False), (True, False))):
        for pipeline in PIPELINES:
            if pipeline == 0 or full:
                adders = ADDER_CHOICES
            else:
                adders = [ADDER_CHOICES[(i + pipeline) % len(ADDER_CHOICES)]]
            for adder in adders:
                cases.append(pytest.param(
                    multiplier, adder, fused, pipeline, signed,
                    id=f"{multiplier}-{adder}-{'fused' if fused else 'unfused'}-"
                       f"P{pipeline}-{'signed' if signed else 'unsigned'}"))
    return cases


@pytest.mark.parametrize("multiplier, adder, fused, pipeline, signed", _mac_matrix())
def test_mac_equivalent(multiplier, adder, fused, pipeline, signed):
    cfg = MacConfig(signed=signed, multiplier=multiplier, adder=adder, fused=fused,
                    pipeline=pipeline)
    gate = to_verilog(cfg.build(), name="gate")
    result = prove_equivalent(behavioral_mac(signed, pipeline), "gold", gate, "gate",
                              sequential=True)
    assert result.equivalent, f"{cfg.slug}:\n{result.counterexample}"
    # k-induction closes at k = P + 1: after P steps the pipeline is a function of
    # the inputs, and the accumulators are equal by the induction hypothesis.
    assert result.steps == pipeline + 1


def test_mac_matrix_covers_every_option():
    seen = {(m, a, f, p, s) for m, a, f, p, s in (c.values for c in _mac_matrix())}
    for field, values in enumerate((GATE_LEVEL, ADDER_CHOICES, (True, False), PIPELINES,
                                    (True, False))):
        assert {case[field] for case in seen} == set(values)
    for pipeline in PIPELINES:
        assert {a for _, a, _, p, _ in seen if p == pipeline} == set(ADDER_CHOICES)


@pytest.mark.parametrize("acc_width", [8, 33])
def test_mac_other_accumulator_widths(acc_width):
    for cfg in (MacConfig(acc_width=acc_width, multiplier="booth", adder="sklansky"),
                MacConfig(acc_width=acc_width, signed=False, fused=False, pipeline=2)):
        gate = to_verilog(cfg.build(), name="gate")
        gold = behavioral_mac(cfg.signed, cfg.pipeline, acc_width)
        assert prove_equivalent(gold, "gold", gate, "gate", sequential=True).equivalent


def test_mac_equivalent_from_reset():
    cfg = MacConfig(pipeline=2, multiplier="wallace")
    gate = to_verilog(cfg.build(), name="gate")
    result = prove_equivalent(behavioral_mac(True, 2), "gold", gate, "gate",
                              sequential=True, from_reset="rst")
    assert result.equivalent and result.steps == 3


# -- the checker must be able to say no --------------------------------------------------

def _break_first_xor(verilog):
    """Replace the first ``^`` in an ``assign`` with ``|``."""
    lines = verilog.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.lstrip().startswith("assign") and "^" in line:
            lines[i] = line.replace("^", "|", 1)
            return "".join(lines), line.strip()
    raise AssertionError("no XOR in the netlist")


def test_broken_mac_is_not_equivalent():
    good = to_verilog(MacConfig().build(), name="gate")
    broken, line = _break_first_xor(good)
    assert broken != good
    result = prove_equivalent(behavioral_mac(True, 0), "gold", broken, "gate",
                              sequential=True)
    assert isinstance(result, EquivResult)
    assert result.equivalent is False, f"mutating {line!r} went unnoticed"
    assert result.counterexample and "in_a" in result.counterexample
    assert "\\gold.acc" in result.counterexample


def test_broken_multiplier_is_not_equivalent():
    gate = to_verilog(Multiplier(width=4, multiplier="array"), name="gate")
    # Swap one partial-product AND for an OR: wrong for some, not all, inputs.
    broken = re.sub(r"(assign \S+ = \S+) & ", r"\1 | ", gate, count=1)
    assert broken != gate
    result = prove_equivalent(behavioral_multiplier(4, True), "gold", broken, "gate")
    assert not result.equivalent and "in_a" in result.counterexample


def test_pipeline_state_mismatch_is_inconclusive_when_too_shallow():
    """k = 1 cannot relate different pipeline encodings: neither proved nor refuted."""
    gate = to_verilog(MacConfig(pipeline=2).build(), name="gate")
    with pytest.raises(InductionInconclusive, match="did not close within 1 steps"):
        prove_equivalent(behavioral_mac(True, 2), "gold", gate, "gate", sequential=True,
                         depth=1)


def test_initial_state_matters_unless_starting_from_reset():
    gold = """module gold(input clk, input rst, input d, output reg [1:0] q = 2'b10);
      always @(posedge clk) if (rst) q <= 0; else q <= q + d;
    endmodule"""
    gate = gold.replace("module gold", "module gate").replace(" = 2'b10", "")
    assert not prove_equivalent(gold, "gold", gate, "gate", sequential=True).equivalent
    assert prove_equivalent(gold, "gold", gate, "gate", sequential=True,
                            from_reset="rst").equivalent


def test_yosys_failure_is_an_error_not_a_verdict():
    gold = behavioral_multiplier(4, True)
    with pytest.raises(YosysError) as info:
        prove_equivalent(gold, "gold", "module gate(input a; endmodule", "gate")
    assert "\n" not in str(info.value) and "ERROR" in str(info.value)
    with pytest.raises(YosysError):                   # no module of that name
        prove_equivalent(gold, "gold", gold.replace("module gold", "module other"), "gate")
    with pytest.raises(YosysError):                   # ports differ
        prove_equivalent(gold, "gold", behavioral_mac(True, 0), "gate")


def test_module_names_must_differ():
    gold = behavioral_multiplier(4, True)
    with pytest.raises(ValueError, match="different names"):
        prove_equivalent(gold, "gold", gold, "gold")


def test_script_shape():
    comb = equiv_script("gold", "gate")
    assert "miter -equiv -flatten -make_assert gold gate miter" in comb
    assert "sat -prove-asserts" in comb and "-tempinduct" not in comb
    seq = equiv_script("gold", "gate", sequential=True, depth=5)
    assert "-tempinduct" in seq and "-set-init-zero" in seq and "-maxsteps 5" in seq
    assert "-set-at 1 in_rst 1" in equiv_script("gold", "gate", sequential=True,
                                                 from_reset="rst")


# -- the external peer -------------------------------------------------------------------

def test_pyrtl_peer_is_wrong_for_minus_eight():
    """PyRTL 1.0.3's signed tree multiplier drops the magnitude bit of -8: the bench
    reports its MAC as NOT equivalent, and the counterexample has an operand of -8."""
    pytest.importorskip("pyrtl")
    from hdl.flows.peers import pyrtl_mac_check, pyrtl_mac_verilog, pyrtl_multiplier_verilog

    mac = pyrtl_mac_verilog(16)
    assert re.search(r"^module mac\(clk, rst, a, b, acc\);", mac, re.M)
    result = pyrtl_mac_check(16)
    assert not result.equivalent
    operands = re.findall(r"\\in_[ab]\s+\d+\s+\w+\s+([01]{4})", result.counterexample)
    assert "1000" in operands, result.counterexample

    product = prove_equivalent(behavioral_multiplier(4, True), "gold",
                               pyrtl_multiplier_verilog(4), "mul")
    assert not product.equivalent
    assert "1000" in re.findall(r"\\in_[ab]\s+\d+\s+\w+\s+([01]{4})",
                                product.counterexample)
