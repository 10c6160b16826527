"""Formal equivalence (yosys miter + sat) of every gate-level FP4 multiplier and MAC
against the behavioural one (decode to magnitude, ``*``, negate, ``+``), and a broken
FP4 netlist that must be refuted."""
import functools
import itertools
import os
import re

import pytest

from hdl.emit import to_verilog
from hdl.flows.formal import prove_equivalent
from hdl.fp4_units import BehavioralFP4Multiplier, FP4Multiplier
from hdl.mac import ADDER_CHOICES, ALL_MULTIPLIERS, PIPELINES, MacConfig

FP4_ARCHS = [m for m in ALL_MULTIPLIERS if m != "behavioral"]


@functools.lru_cache(maxsize=None)
def gold_mac(pipeline, acc_width=16):
    cfg = MacConfig(numerics="fp4", multiplier="behavioral", pipeline=pipeline,
                    acc_width=acc_width)
    return to_verilog(cfg.build(), name="gold")


@functools.lru_cache(maxsize=None)
def gold_multiplier():
    return to_verilog(BehavioralFP4Multiplier(), name="gold")


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "unfused"])
@pytest.mark.parametrize("multiplier", FP4_ARCHS)
def test_fp4_multiplier_equivalent(multiplier, fused):
    """All 256 code pairs at once: the product 4*a*b (9 bits) of each architecture."""
    gate = to_verilog(FP4Multiplier(multiplier=multiplier, fused=fused), name="gate")
    result = prove_equivalent(gold_multiplier(), "gold", gate, "gate")
    assert result.equivalent, result.counterexample


def _mac_matrix():
    """Each architecture x fused/unfused, pipeline and adder rotated so every P and every
    adder appears with each architecture; SYSTOLIC_FULL_FORMAL=1 proves the whole
    cross product (120 proofs)."""
    full = os.environ.get("SYSTOLIC_FULL_FORMAL") == "1"
    cases = []
    for i, (multiplier, fused) in enumerate(itertools.product(FP4_ARCHS, (True, False))):
        for j, pipeline in enumerate(PIPELINES):
            for k, adder in enumerate(ADDER_CHOICES):
                if not full and (i + j) % len(PIPELINES) or not full and (
                        (i + j + k) % len(ADDER_CHOICES)):
                    continue
                cases.append(pytest.param(
                    multiplier, adder, fused, pipeline,
                    id=f"{multiplier}-{adder}-{'fused' if fused else 'unfused'}-P{pipeline}"))
    return cases


@pytest.mark.parametrize("multiplier, adder, fused, pipeline", _mac_matrix())
def test_fp4_mac_equivalent(multiplier, adder, fused, pipeline):
    cfg = MacConfig(numerics="fp4", multiplier=multiplier, adder=adder, fused=fused,
                    pipeline=pipeline)
    gate = to_verilog(cfg.build(), name="gate")
    result = prove_equivalent(gold_mac(pipeline), "gold", gate, "gate", sequential=True)
    assert result.equivalent, f"{cfg.slug}:\n{result.counterexample}"
    assert result.steps == pipeline + 1


def test_mac_matrix_covers_every_option():
    seen = [c.values for c in _mac_matrix()]
    assert {m for m, *_ in seen} == set(FP4_ARCHS)
    assert {(m, f) for m, _, f, _ in seen} == set(itertools.product(FP4_ARCHS, (True, False)))
    assert {p for *_, p in seen} == set(PIPELINES)
    assert {a for _, a, _, _ in seen} == set(ADDER_CHOICES)


@pytest.mark.parametrize("acc_width", [9, 33])
def test_fp4_mac_other_widths(acc_width):
    for cfg in (MacConfig(numerics="fp4", acc_width=acc_width),
                MacConfig(numerics="fp4", acc_width=acc_width, multiplier="booth",
                          fused=False, adder="sklansky")):
        gate = to_verilog(cfg.build(), name="gate")
        assert prove_equivalent(gold_mac(0, acc_width), "gold", gate, "gate",
                                sequential=True).equivalent, cfg.slug


@pytest.mark.parametrize("multiplier", ["shift", "dadda"])
def test_broken_fp4_mac_is_not_equivalent(multiplier):
    """Swap the first XOR of the netlist for an OR: the proof must fail with a trace."""
    good = to_verilog(MacConfig(numerics="fp4", multiplier=multiplier).build(), name="gate")
    lines = good.splitlines(keepends=True)
    i = next(i for i, line in enumerate(lines)
             if line.lstrip().startswith("assign") and "^" in line)
    lines[i] = lines[i].replace("^", "|", 1)
    broken = "".join(lines)
    result = prove_equivalent(gold_mac(0), "gold", broken, "gate", sequential=True)
    assert result.equivalent is False, f"mutating {lines[i].strip()!r} went unnoticed"
    assert "in_a" in result.counterexample and "\\gold.acc" in result.counterexample


def test_broken_fp4_decoder_is_not_equivalent():
    """A decoder that reads E = 3 as E = 2 (6 becomes 3) must be refuted."""
    gate = to_verilog(FP4Multiplier(multiplier="dadda"), name="gate")
    broken, n = re.subn(r"(assign dec_m3 = )[^;]+;", r"\g<1>1'h0;", gate, count=1)
    assert n == 1
    result = prove_equivalent(gold_multiplier(), "gold", broken, "gate")
    assert not result.equivalent and "in_a" in result.counterexample
