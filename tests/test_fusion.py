"""The fused digit datapath (hdl.fusion) against Python integers, exhaustively.

A W4A8 MAC is two digit steps and an int8 MAC four (hi*hi, hi*lo with x16, lo*hi,
lo*lo with x16): here the steps are chained combinationally (a WS column of PEs at
P = 0), written out by hand from the arithmetic, not from the generator's phase table,
and every operand pair is checked (4,096 W4A8 pairs, 65,536 int8 pairs, each with a
seeded random addend that the Horner steps must scale by 16 per digit weight) in
Icarus on the emitted Verilog (Amaranth's simulator without Icarus)."""
import itertools
import random

import pytest

from amaranth.sim import Simulator

from hdl.fusion import (BehavioralFusedMAC, FusedMAC, fused_multiply_add,
                        precision_max_safe_k)
from hdl.mac import MacConfig, ConfigError
from tests.amaranth_harness import Combinational, evaluate

W = 24
CFG = MacConfig(acc_width=W)


def s4(x):
    return x - 16 if x >= 8 else x


def s8(x):
    return x - 256 if x >= 128 else x


def chain(steps, b_width):
    """A combinational chain of fused steps: ``steps`` = list of (a digit slice, b digit
    slice, ua, ub, x16) over the a and b ports; the b port also carries the W-bit
    addend above its operand bits."""
    def build(net, a, b):
        acc = list(b[b_width:])
        for (a0, a1), (b0, b1), ua, ub, x16 in steps:
            acc = fused_multiply_add(net.m, net, a[a0:a1], b[b0:b1],
                                     {"ua": ua, "ub": ub, "x16": x16}, acc, CFG)
        return acc
    return build


def _addends(n, seed):
    rng = random.Random(seed)
    extremes = [0, 1, (1 << W) - 1, 1 << (W - 1), (1 << (W - 1)) - 1]
    return [extremes[i] if i < len(extremes) else rng.randrange(1 << W) for i in range(n)]


def _run(steps, a_width, b_width, pairs, seed):
    dut = Combinational(chain(steps, b_width), a_width=a_width, b_width=b_width + W,
                        out_width=W)
    adds = _addends(len(pairs), seed)
    vectors = [(x, y | (z << b_width)) for (x, y), z in zip(pairs, adds)]
    return adds, evaluate(dut, vectors)


def test_int4_step_every_pair_and_tag():
    """One step, every 4-bit pair x every tag combination: (16 if x16) * addend +
    digit(a) * digit(b), a digit unsigned when its tag is set."""
    for ua, ub, x16 in itertools.product((0, 1), repeat=3):
        pairs = list(itertools.product(range(16), repeat=2))
        adds, got = _run([((0, 4), (0, 4), ua, ub, x16)], 4, 4, pairs, seed=ua + 2 * ub)
        for (x, y), z, g in zip(pairs, adds, got):
            da, db = (x if ua else s4(x)), (y if ub else s4(y))
            want = ((16 if x16 else 1) * z + da * db) % (1 << W)
            assert g == want, f"ua={ua} ub={ub} x16={x16}: a={x} b={y} acc={z}"


def test_w4a8_every_pair():
    """a int8 (-128..127) x b int4 (-8..7): hi*b, then x16 and lo*b."""
    pairs = list(itertools.product(range(256), range(16)))
    steps = [((4, 8), (0, 4), 0, 0, 0), ((0, 4), (0, 4), 1, 0, 1)]
    adds, got = _run(steps, 8, 4, pairs, seed=5)
    for (x, y), z, g in zip(pairs, adds, got):
        assert g == (16 * z + s8(x) * s4(y)) % (1 << W), f"a={s8(x)} b={s4(y)} acc={z}"


def test_int8_every_pair():
    """a, b int8: hi*hi, x16 hi*lo, lo*hi, x16 lo*lo = 256*acc + a*b."""
    pairs = list(itertools.product(range(256), repeat=2))
    steps = [((4, 8), (4, 8), 0, 0, 0), ((4, 8), (0, 4), 0, 1, 1),
             ((0, 4), (4, 8), 1, 0, 0), ((0, 4), (0, 4), 1, 1, 1)]
    adds, got = _run(steps, 8, 8, pairs, seed=7)
    for (x, y), z, g in zip(pairs, adds, got):
        assert g == (256 * z + s8(x) * s8(y)) % (1 << W), f"a={s8(x)} b={s8(y)} acc={z}"


@pytest.mark.parametrize("pipeline", [0, 2])
@pytest.mark.parametrize("cls", [FusedMAC, BehavioralFusedMAC])
def test_fused_mac_sequence(cls, pipeline):
    """The clocked MAC (gate-level and the behavioural reference used by the formal
    proofs) over a seeded random step sequence: acc after each edge, with latency P."""
    cfg = MacConfig(acc_width=16, pipeline=pipeline,
                    multiplier="behavioral" if cls is BehavioralFusedMAC else None)
    dut = cls(cfg, "int8")
    rng = random.Random(11 + pipeline)
    seq = [(rng.randrange(16), rng.randrange(16), rng.randrange(2), rng.randrange(2),
            rng.randrange(2)) for _ in range(300)]
    seq += [(8, 8, 0, 0, 1), (15, 15, 1, 1, 1), (7, 8, 0, 1, 0), (8, 15, 0, 1, 1)] * 3
    got = []

    async def bench(ctx):
        for a, b, ua, ub, x16 in seq + [(0, 0, 0, 0, 0)] * pipeline:
            for port, v in (("a", a), ("b", b), ("ua", ua), ("ub", ub), ("x16", x16)):
                ctx.set(getattr(dut, port), v)
            await ctx.tick()
            got.append(ctx.get(dut.acc))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    acc = 0
    for n, (a, b, ua, ub, x16) in enumerate(seq):
        acc = ((16 if x16 else 1) * acc + (a if ua else s4(a)) * (b if ub else s4(b))) \
            % (1 << 16)
        assert got[n + pipeline] == acc, f"step {n}"


def test_max_safe_k_per_precision():
    """Worst-case sums by hand: int4 64*k, W4A8 1024*k (-128*-8), int8 16384*k."""
    assert precision_max_safe_k("int4", 16) == 32767 // 64 == 511
    assert precision_max_safe_k("w4a8", 16) == 31
    assert precision_max_safe_k("int8", 16) == 1
    assert precision_max_safe_k("int8", 32) == (2 ** 31 - 1) // 16384
    # 17 bits: +65535 holds 3 * 16384, not 4 (the negative end, -65536, would allow 4)
    assert precision_max_safe_k("int8", 17) == 3


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_fused_mac_rejects():
    with pytest.raises(ConfigError, match="fusion"):
        FusedMAC(MacConfig(), "int16")
    with pytest.raises(ConfigError, match="numerics int4"):
        FusedMAC(MacConfig(numerics="fp4"), "int8")


@pytest.mark.parametrize("acc_width", [16, 24])
def test_shift_alternative_every_digit_pair(acc_width):
    """The measured alternative (product shifted by 0/4/8): every digit pair x every
    tag combination, with seeded random addends, against Python integers."""
    from hdl.fusion import shift_multiply_add
    pairs = list(itertools.product(range(16), repeat=2))
    for ua, ub, ha, hb in itertools.product((0, 1), repeat=4):
        def build(net, a, b):
            return shift_multiply_add(net, a, b[:4], {"ua": ua, "ub": ub, "ha": ha,
                                                      "hb": hb}, b[4:])
        dut = Combinational(build, a_width=4, b_width=4 + acc_width, out_width=acc_width)
        rng = random.Random(ua + 2 * ub + 4 * ha + 8 * hb)
        adds = [rng.randrange(1 << acc_width) for _ in pairs]
        got = evaluate(dut, [(x, y | (z << 4)) for (x, y), z in zip(pairs, adds)])
        for (x, y), z, g in zip(pairs, adds, got):
            da, db = (x if ua else s4(x)), (y if ub else s4(y))
            want = (z + (da * db << 4 * (ha + hb))) % (1 << acc_width)
            assert g == want, f"tags {ua}{ub}{ha}{hb}: a={x} b={y} acc={z}"


def test_picture_trace_is_the_gate_level_mac():
    """The figure's numbers come from the gate-level MAC and end at 256*s + a*b."""
    from sim.studies.fusion_picture import digit_trace
    for a, b in ((-128, -128), (127, -128), (-100, 77)):
        trace = digit_trace(a, b, start=3)
        assert [t[5] for t in trace] == [0, 1, 0, 1]          # x16 on hi*lo and lo*lo
        assert trace[-1][-1] == 256 * 3 + a * b
