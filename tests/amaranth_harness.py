"""Run a gate-level arithmetic function in Amaranth's simulator over many inputs."""
from amaranth.hdl import Elaboratable, Module, Signal, Cat
from amaranth.sim import Simulator

from hdl.gates import Netlist


class Combinational(Elaboratable):
    """Wraps ``build(net, a_bits, b_bits) -> bits`` between two input ports and one
    output port, so any adder or multiplier can be simulated on its own."""

    def __init__(self, build, *, a_width, b_width, out_width):
        self.build = build
        self.a = Signal(a_width)
        self.b = Signal(b_width)
        self.out = Signal(out_width)

    def elaborate(self, platform):
        m = Module()
        bits = self.build(Netlist(m), list(self.a), list(self.b))
        m.d.comb += self.out.eq(Cat(*bits))
        return m


def evaluate(dut, pairs):
    """The output for each (a, b) in ``pairs``, as raw unsigned integers."""
    results = []

    async def bench(ctx):
        for x, y in pairs:
            ctx.set(dut.a, x)
            ctx.set(dut.b, y)
            results.append(ctx.get(dut.out))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    return results
