"""cocotb tests for MACs: one standalone ``mac`` or a whole ``mac_suite`` at once.

The design under test is described by the manifest in the environment variable
``SYSTOLIC_MAC_MANIFEST`` (see :mod:`sim.drivers.mac_suite`): for every variant, which output
port and bits hold its accumulator and the configuration fields that define its
behaviour. Every variant gets its own :class:`~sim.models.mac.MacModel` and is checked on
every clock cycle. The DUT needs inputs ``clk``, ``rst``, ``a``, ``b``; this bench
drives the clock itself (period 10 ns): inputs change with the falling edge, outputs
are read half a period after the rising edge.

A mismatch is reported once per variant (after its first mismatch its model and the
hardware have diverged), naming variant, cycle (the n-th rising edge of that test,
its initial reset included), inputs, expected and got; the test fails at its end with
up to :data:`MAX_REPORTED` such lines.
"""
import os
import random

import cocotb
from cocotb.triggers import Timer

from sim.drivers.mac_suite import MANIFEST_ENV, load_manifest
from sim.models.mac import MacModel

HALF_PERIOD_NS = 5
MAX_REPORTED = 20

# Fixed seeds: every run drives the same stimulus.
SEED_ALL_PAIRS = 0x5A17
SEED_EXTREMES = 0xE87E
SEED_RESET = 0x4E5E


class _Variant:
    __slots__ = ("name", "port", "lsb", "width", "mask", "signed", "latency", "model",
                 "numerics")

    def __init__(self, entry, operand_width):
        self.name = entry["name"]
        self.port = entry["port"]
        self.lsb = int(entry["lsb"])
        self.width = int(entry["width"])
        self.mask = (1 << self.width) - 1
        self.signed = bool(entry["signed"])
        self.numerics = entry.get("numerics") or ("int4" if self.signed else "uint4")
        self.latency = int(entry["latency"])
        if self.width != int(entry["acc_width"]):
            raise ValueError(f"{self.name}: port slice is {self.width} bits but "
                             f"acc_width is {entry['acc_width']}")
        self.model = MacModel(numerics=self.numerics, acc_width=self.width,
                              pipeline=self.latency, operand_width=operand_width)


def _describe(value, width, signed):
    if not isinstance(value, int):
        return repr(value)                      # unresolved bits, e.g. 'xxxx0101'
    text = f"{value:#x}"
    if signed and value >> (width - 1):
        text += f" ({value - (1 << width)})"
    elif not signed or value:
        text += f" ({value})"
    return text


class MacBench:
    """Drives a DUT and checks every manifest variant against its model each cycle."""

    def __init__(self, dut):
        raw = os.environ.get(MANIFEST_ENV)
        if not raw:
            raise RuntimeError(f"{MANIFEST_ENV} is not set; run this module through "
                               "sim.runner.run_cocotb with "
                               "sim.drivers.mac_suite.manifest_env(...)")
        manifest = load_manifest(raw)
        self.dut = dut
        self.operand_width = int(manifest["operand_width"])
        self.operand_max = (1 << self.operand_width) - 1
        self.variants = [_Variant(e, self.operand_width) for e in manifest["variants"]]
        if not self.variants:
            raise RuntimeError("the manifest lists no variants")
        self.ports = {}
        for v in self.variants:
            if v.port not in self.ports:
                self.ports[v.port] = getattr(dut, v.port)
        self.max_latency = max(v.latency for v in self.variants)
        self.cycle = 0
        self.first_failure = {}                 # variant name -> message
        self.failures = 0
        self.last = {}                          # variant name -> acc read after last edge

    # -- driving ---------------------------------------------------------------------

    async def step(self, a, b, rst=False):
        """One clock cycle: apply inputs, rising edge, read and check every variant.
        Returns ``{variant name: acc}`` (an int, or a str if bits are unresolved)."""
        dut = self.dut
        dut.clk.value = 0
        dut.a.value = a
        dut.b.value = b
        dut.rst.value = 1 if rst else 0
        await Timer(HALF_PERIOD_NS, unit="ns")
        dut.clk.value = 1
        await Timer(HALF_PERIOD_NS, unit="ns")
        self.cycle += 1
        words = {}
        for port, handle in self.ports.items():
            value = handle.value
            try:
                words[port] = int(value)
            except ValueError:                  # X or Z somewhere
                words[port] = str(value)
        last = self.last
        for v in self.variants:
            expected = v.model.step(a, b, rst)
            word = words[v.port]
            if isinstance(word, int):
                got = (word >> v.lsb) & v.mask
            else:
                got = word[len(word) - v.lsb - v.width:len(word) - v.lsb]
            last[v.name] = got
            if got != expected:
                self._fail(v, a, b, rst, f"expected acc={_describe(expected, v.width, v.signed)}"
                                         f" got {_describe(got, v.width, v.signed)}")
        return last

    async def reset(self, cycles=1):
        for _ in range(cycles):
            await self.step(0, 0, rst=True)

    async def flush(self):
        """Zero inputs until every product in flight has reached its accumulator."""
        for _ in range(self.max_latency):
            await self.step(0, 0)

    # -- checking --------------------------------------------------------------------

    def _fail(self, variant, a, b, rst, what):
        self.failures += 1
        if variant.name not in self.first_failure:
            self.first_failure[variant.name] = (
                f"{variant.name} cycle {self.cycle}: a={a:#x} b={b:#x} rst={int(bool(rst))}: "
                f"{what}")

    def expect_all(self, value, why):
        """Beyond the models: every variant must read ``value`` after the last edge."""
        for v in self.variants:
            got = self.last[v.name]
            if got != value:
                self.failures += 1
                self.first_failure.setdefault(
                    v.name, f"{v.name} cycle {self.cycle}: {why}: expected acc={value:#x} "
                            f"got {_describe(got, v.width, v.signed)}")

    def finish(self):
        if not self.first_failure:
            return
        lines = list(self.first_failure.values())
        shown = lines[:MAX_REPORTED]
        more = (f"\n... and {len(lines) - len(shown)} more variants"
                if len(lines) > len(shown) else "")
        raise AssertionError(
            f"{len(lines)} of {len(self.variants)} variants mismatched "
            f"({self.failures} mismatching reads in {self.cycle} cycles):\n"
            + "\n".join(shown) + more)

    def random_operand(self, rng, nonzero=False):
        return rng.randint(1 if nonzero else 0, self.operand_max)


async def _start(dut):
    bench = MacBench(dut)
    dut._log.info("checking %d variant(s) on %s", len(bench.variants),
                  ", ".join(sorted(bench.ports)))
    await bench.reset(2)
    return bench


@cocotb.test()
async def test_all_pairs(dut):
    """All (a, b) pairs in random order, resets at random points in between.

    A reset drops the products still in the pipeline; those pairs are queued again, so
    every pair reaches every variant's accumulator at least once."""
    bench = await _start(dut)
    rng = random.Random(SEED_ALL_PAIRS)
    n = bench.operand_max + 1
    pending = [(a, b) for a in range(n) for b in range(n)]
    rng.shuffle(pending)
    recent = []                                 # pairs whose products may be in flight
    resets = 0
    fed = False                                 # a pair went in since the last reset
    while pending:
        if fed and rng.random() < 1 / 12:
            fed = False
            resets += 1
            for _ in range(rng.choice((1, 1, 1, 2, 3))):
                await bench.step(bench.random_operand(rng), bench.random_operand(rng), rst=True)
            pending.extend(recent)              # their products were cleared
            recent.clear()
        a, b = pending.pop(0)
        await bench.step(a, b)
        fed = True
        recent.append((a, b))
        if len(recent) > bench.max_latency:
            recent.pop(0)
    await bench.flush()
    dut._log.info("%d cycles, %d resets", bench.cycle, resets)
    assert resets >= 10, f"stimulus bug: only {resets} resets"
    bench.finish()


# FP4 codes: 0x7 = 6, 0xF = -6, 0x8 = -0, 0x1 = 0.5, 0x9 = -0.5, 0x6 = 4
# At W = 16 (+-144 quarters per cycle): two wraps upwards in the first phase, one
# downwards in the third (the check below asks for three); narrower ones wrap more.
FP4_PHASES = [((0x7, 0x7), 700), ((0xF, 0xF), 100), ((0x7, 0xF), 300), ((0x8, 0x8), 20),
              ((0x1, 0x9), 40)]
FP4_EXTREMES = [(0x7, 0x7), (0xF, 0xF), (0x7, 0xF), (0xF, 0x7), (0x8, 0x8), (0x8, 0xF),
                (0x0, 0x8), (0x1, 0x1), (0x9, 0x9), (0x1, 0x9), (0x6, 0xE), (0x8, 0x7)]


def _extreme_pairs(n_bits):
    lo, hi = 1 << (n_bits - 1), (1 << n_bits) - 1       # raw bits of the signed minimum
    pos = lo - 1                                         # signed maximum
    return [(lo, lo), (lo, pos), (pos, lo), (hi, hi), (pos, pos), (lo, hi), (hi, lo), (0, lo)]


@cocotb.test()
async def test_extremes_wrap(dut):
    """Long runs of extreme products, so 16-bit accumulators wrap several times.

    Phases: 15*15 (the unsigned maximum, 225 per cycle; signed it is -1*-1);
    -8*-8 (the signed maximum, 64 per cycle); -8*7 (the signed minimum, -56 per cycle,
    so signed accumulators wrap downwards); then random pairs, half of them extreme.
    Every accumulator of 16 bits or fewer must overflow at least 3 times (checked on
    the models, so a shortened stimulus cannot pass silently). FP4 variants get their
    own phases: 6*6 and -6*-6 (+144 quarters per cycle), 6*-6 (-144), -0*-0, 0.5*-0.5;
    a suite mixing both plays both."""
    bench = await _start(dut)
    rng = random.Random(SEED_EXTREMES)
    n = bench.operand_width
    lo, hi, pos = 1 << (n - 1), (1 << n) - 1, (1 << (n - 1)) - 1
    kinds = {v.numerics == "fp4" for v in bench.variants}
    phases = [((hi, hi), 600), ((lo, lo), 1600), ((lo, pos), 1300)] if False in kinds else []
    phases += FP4_PHASES if True in kinds else []
    for (a, b), cycles in phases:
        for _ in range(cycles):
            await bench.step(a, b)
    extremes = (_extreme_pairs(n) if False in kinds else []) + (
        FP4_EXTREMES if True in kinds else [])
    for _ in range(200):
        if rng.random() < 0.5:
            await bench.step(*rng.choice(extremes))
        else:
            await bench.step(bench.random_operand(rng), bench.random_operand(rng))
    await bench.flush()
    short = [f"{v.name} ({v.model.wraps})" for v in bench.variants
             if v.width <= 16 and v.model.wraps < 3]
    assert not short, f"stimulus bug: too few overflows in {', '.join(short)}"
    bench.finish()


@cocotb.test()
async def test_reset_clears_pipeline(dut):
    """Reset while products are in flight: acc and every pipeline stage must clear.

    After the reset the inputs stay 0 for longer than the deepest pipeline, and every
    accumulator must read exactly 0 (checked directly, not only through the models);
    then a single product must appear after exactly ``latency`` edges."""
    bench = await _start(dut)
    rng = random.Random(SEED_RESET)
    for _ in range(16):
        for _ in range(rng.randint(1, 4)):              # fill the pipeline
            await bench.step(bench.random_operand(rng, True), bench.random_operand(rng, True))
        for _ in range(rng.choice((1, 1, 2))):          # inputs at a reset edge are dropped
            await bench.step(bench.random_operand(rng, True), bench.random_operand(rng, True),
                             rst=True)
        bench.expect_all(0, "right after reset")
        for k in range(bench.max_latency + 2):
            await bench.step(0, 0)
            bench.expect_all(0, f"{k + 1} cycle(s) after reset with zero inputs")
        await bench.step(bench.random_operand(rng, True), bench.random_operand(rng, True))
        for _ in range(bench.max_latency):
            await bench.step(0, 0)
    bench.finish()
