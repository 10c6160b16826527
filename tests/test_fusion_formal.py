"""Formal equivalence (Yosys miter + SAT k-induction; the double-buffered PEs with their
registers matched by name) of the fused digit datapath.

* the fused MAC (every tag free, so every mode's digit step) against the behavioural
  reference written with ``*``, ``+`` and ``<<``, at P = 0, 1, 2;
* the fused compact PE of each dataflow (gate-level MAC) against the same PE with the
  behavioural fused MAC.

That the int4 mode is unchanged is checked on the array (the existing GEMM tests' cycles
and results, tests/test_fusion_array.py)."""
import pytest

from hdl.array import pe_verilog
from hdl.emit import to_verilog
from hdl.flows.formal import prove_equivalent, prove_equivalent_matched
from hdl.fusion import BehavioralFusedMAC, FusedMAC
from hdl.mac import MacConfig


@pytest.mark.parametrize("fusion", ["w4a8", "int8"])
@pytest.mark.parametrize("pipeline", [0, 1, 2])
def test_fused_mac_equivalent(pipeline, fusion):
    gold = to_verilog(BehavioralFusedMAC(MacConfig(pipeline=pipeline,
                                                   multiplier="behavioral"), fusion),
                      name="gold")
    gate = to_verilog(FusedMAC(MacConfig(pipeline=pipeline), fusion), name="gate")
    result = prove_equivalent(gold, "gold", gate, "gate", sequential=True)
    assert result.equivalent, result.counterexample
    assert result.steps == pipeline + 1


# The double-buffered PEs' second register (WS: the active weight behind the shadow;
# OS: the drain register) can stay unobservable for ever (a = 0, no swap), so plain
# k-induction cannot close on them; they are proved below with their registers matched
# by name (hdl.flows.formal.prove_equivalent_matched).
@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_fused_pe_equivalent(dataflow):
    double_buffer = False
    gold = pe_verilog(MacConfig(multiplier="behavioral"), dataflow, fusion="int8",
                      double_buffer=double_buffer, name="gold", cache=False)
    gate = pe_verilog(MacConfig(), dataflow, fusion="int8", double_buffer=double_buffer,
                      name="gate", cache=False)
    result = prove_equivalent(gold, "gold", gate, "gate", sequential=True)
    assert result.equivalent, result.counterexample


def _db_pair(dataflow, gate_edit=None):
    kw = dict(fusion="int8", double_buffer=True, cache=False)
    gold = pe_verilog(MacConfig(multiplier="behavioral"), dataflow, name="gold", **kw)
    gate = pe_verilog(MacConfig(), dataflow, name="gate", **kw)
    return gold, gate_edit(gate) if gate_edit else gate


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_double_buffered_fused_pe_equivalent(dataflow):
    """The double-buffered fused PEs (tags travelling with A), gate-level against the
    behavioural fused MAC, registers matched by name."""
    gold, gate = _db_pair(dataflow)
    result = prove_equivalent_matched(gold, "gold", gate, "gate")
    assert result.equivalent, result.counterexample


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_matched_proof_can_fail(dataflow):
    """A double-buffered PE whose sum has its two lowest bits swapped (in every place
    the sum is used) is not proved."""
    def miswire(text):
        assert text.count("fa13_s, ha4_s }") >= 1
        return text.replace("fa13_s, ha4_s }", "ha4_s, fa13_s }")
    gold, gate = _db_pair(dataflow, miswire)
    assert not prove_equivalent_matched(gold, "gold", gate, "gate").equivalent


def test_a_wrong_horner_step_is_refuted():
    """The proof can fail: a MAC with one accumulator bit miswired is not equivalent."""
    gold = to_verilog(BehavioralFusedMAC(MacConfig(multiplier="behavioral"), "int8"),
                      name="gold")
    gate = to_verilog(FusedMAC(MacConfig(), "int8"), name="gate")
    assert "acc[0]" in gate
    result = prove_equivalent(gold, "gold", gate.replace(
        "acc[0]", "acc[1]", 1), "gate", sequential=True)
    assert not result.equivalent
