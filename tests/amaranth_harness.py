"""Run a gate-level arithmetic function over many inputs: in Icarus Verilog (the Verilog
that Amaranth emits for it, what users get) when ``iverilog`` is installed, else in
Amaranth's simulator. Both read back the raw outputs; the tests compare them with
Python integer arithmetic."""
import shutil
import subprocess
import tempfile
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Elaboratable, Module, Signal, Cat
from amaranth.sim import Simulator

from hdl.gates import Netlist

#: From this many input pairs on, Icarus is used (when present): its start-up costs
#: about a second, Amaranth's simulator about a millisecond per pair of an 8-bit
#: multiplier.
ICARUS_FROM = 1000


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
    pairs = list(pairs)
    if len(pairs) >= ICARUS_FROM and shutil.which("iverilog") and shutil.which("vvp"):
        return _evaluate_icarus(dut, pairs)
    return _evaluate_amaranth(dut, pairs)


def _evaluate_amaranth(dut, pairs):
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


_BENCH = """`timescale 1ns/1ps
module bench;
  reg [{aw}-1:0] a;
  reg [{bw}-1:0] b;
  wire [{ow}-1:0] out;
  reg [{aw}+{bw}-1:0] vectors [0:{n}-1];
  integer i, f;
  comb dut(.a(a), .b(b), .out(out));
  initial begin
    $readmemh("in.hex", vectors);
    f = $fopen("out.hex", "w");
    for (i = 0; i < {n}; i = i + 1) begin
      {{a, b}} = vectors[i];
      #1 $fdisplay(f, "%h", out);
    end
    $fclose(f);
    $finish;
  end
endmodule
"""


def _evaluate_icarus(dut, pairs):
    aw, bw, ow = len(dut.a), len(dut.b), len(dut.out)
    text = verilog.convert(dut, name="comb", ports=[dut.a, dut.b, dut.out], emit_src=False)
    with tempfile.TemporaryDirectory(prefix="arith-") as tmp:
        d = Path(tmp)
        (d / "comb.v").write_text(text)
        (d / "bench.v").write_text(_BENCH.format(aw=aw, bw=bw, ow=ow, n=len(pairs)))
        digits = (aw + bw + 3) // 4
        (d / "in.hex").write_text("".join(f"{(x << bw) | y:0{digits}x}\n" for x, y in pairs))
        subprocess.run(["iverilog", "-g2005", "-o", "bench.vvp", "bench.v", "comb.v"],
                       cwd=d, check=True, capture_output=True)
        subprocess.run(["vvp", "-n", "bench.vvp"], cwd=d, check=True, capture_output=True)
        lines = (d / "out.hex").read_text().split()
    if len(lines) != len(pairs):
        raise RuntimeError(f"icarus gave {len(lines)} outputs for {len(pairs)} inputs")
    return [int(v, 16) for v in lines]      # an x or z bit fails here
