"""Formal equivalence (Yosys miter + SAT k-induction) of the fused digit datapath.

* the fused MAC (every tag free, so every mode's digit step) against the behavioural
  reference written with ``*``, ``+`` and ``<<``, at P = 0, 1, 2;
* the fused compact PE of each dataflow (gate-level MAC) against the same PE with the
  behavioural fused MAC.

That the int4 mode is unchanged is checked on the array (the existing GEMM tests' cycles
and results, tests/test_fusion_array.py)."""
import pytest

from hdl.array import pe_verilog
from hdl.emit import to_verilog
from hdl.flows.formal import prove_equivalent
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


# The double-buffered PEs are not proved here: their second register (WS: the active
# weight behind the shadow; OS: the drain register) can stay unobservable for ever
# (a = 0, no swap), so plain k-induction cannot close; their datapath is the same
# fused_multiply_add, proved above as a MAC and below in the compact PEs.
@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_fused_pe_equivalent(dataflow):
    double_buffer = False
    gold = pe_verilog(MacConfig(multiplier="behavioral"), dataflow, fusion="int8",
                      double_buffer=double_buffer, name="gold", cache=False)
    gate = pe_verilog(MacConfig(), dataflow, fusion="int8", double_buffer=double_buffer,
                      name="gate", cache=False)
    result = prove_equivalent(gold, "gold", gate, "gate", sequential=True)
    assert result.equivalent, result.counterexample


def test_a_wrong_horner_step_is_refuted():
    """The proof can fail: a MAC with one accumulator bit miswired is not equivalent."""
    gold = to_verilog(BehavioralFusedMAC(MacConfig(multiplier="behavioral"), "int8"),
                      name="gold")
    gate = to_verilog(FusedMAC(MacConfig(), "int8"), name="gate")
    assert "acc[0]" in gate
    result = prove_equivalent(gold, "gold", gate.replace(
        "acc[0]", "acc[1]", 1), "gate", sequential=True)
    assert not result.equivalent
