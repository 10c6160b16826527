"""Picture: how one fusable PE computes an int8 x int8 product in four digit steps.

The values are read from the gate-level fused MAC (:class:`hdl.fusion.FusedMAC`, W = 24)
simulated in Amaranth for the four steps of one MAC (a hi*hi, x16 + hi*lo, lo*hi,
x16 + lo*lo), starting from a nonzero partial sum so the Horner steps show; the
figure checks the final sum against Python's ``256*s0 + a*b``.

``python -m sim.studies.fusion_picture docs/fusion_int8_pe.png [A B]``
"""
import sys

from amaranth.sim import Simulator

from hdl.fusion import PHASES, FusedMAC
from hdl.mac import MacConfig

W = 24


def digit_trace(a, b, start=3):
    """``[(step label, a digit, b digit, ua, ub, x16, acc after)]`` of the gate-level
    MAC for one int8 MAC, from ``acc = start``."""
    dut = FusedMAC(MacConfig(acc_width=W), "int8")
    digit = {"hi": lambda x: x >> 4, "lo": lambda x: x & 15}
    steps = [(f"{da}(a) x {db}(b)", digit[da](a), digit[db](b), ua, ub, x16)
             for da, db, ua, ub, x16 in PHASES["int8"]]
    out = []

    async def bench(ctx):
        # load `start` with one step: x16 = 0, 0 * 0 ... acc = 0 after reset; add start
        # as start * 1 (a = start when start <= 7)
        for port, v in (("a", start & 15), ("b", 1), ("ua", 0), ("ub", 0), ("x16", 0)):
            ctx.set(getattr(dut, port), v)
        await ctx.tick()
        for label, x, y, ua, ub, x16 in steps:
            for port, v in (("a", x & 15), ("b", y & 15), ("ua", ua), ("ub", ub),
                            ("x16", x16)):
                ctx.set(getattr(dut, port), v)
            await ctx.tick()
            raw = ctx.get(dut.acc)
            out.append((label, x, y, ua, ub, x16, raw - (1 << W) if raw >> (W - 1) else raw))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    if out[-1][-1] != 256 * start + a * b:
        raise AssertionError(f"trace ends at {out[-1][-1]}, want {256 * start + a * b}")
    return out


def draw(path, a=-100, b=77, start=3):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    trace = digit_trace(a, b, start)
    fig, ax = plt.subplots(figsize=(10, 4.2))
    ax.axis("off")
    ax.set_xlim(0, 10)
    ax.set_ylim(-1.1, len(trace) + 1.4)
    ax.text(0, len(trace) + 1.0, f"One fusable PE, int8 x int8: a = {a} = 16*({a >> 4}) + "
            f"{a & 15},  b = {b} = 16*({b >> 4}) + {b & 15};  partial sum in = {start}",
            fontsize=11, weight="bold")
    head = ["cycle / row", "digit step", "a digit", "b digit", "ua ub x16",
            "sum := (x16 ? 16*sum : sum) + a_d*b_d"]
    xs = [0, 1.1, 3.2, 4.2, 5.2, 6.5]
    for x, h in zip(xs, head):
        ax.text(x, len(trace) + 0.3, h, fontsize=9, weight="bold")
    prev = start
    for i, (label, x, y, ua, ub, x16, acc) in enumerate(trace):
        yy = len(trace) - 1 - i
        colour = "#ffe9c7" if x16 else "#e8f0ff"
        ax.add_patch(plt.Rectangle((-0.1, yy - 0.35), 10.1, 0.75, color=colour, zorder=0))
        cells = [f"t+{i}", label, f"{x} ({'u' if ua else 's'})", f"{y} ({'u' if ub else 's'})",
                 f"{ua}  {ub}  {x16}",
                 f"{'16*' if x16 else ''}{prev} + {x}*{y} = {acc}"]
        for xpos, c in zip(xs, cells):
            ax.text(xpos, yy, c, fontsize=9, va="center", family="monospace")
        prev = acc
    ax.text(0, -0.9, f"result {trace[-1][-1]} = 256*{start} + ({a})*({b}): the Horner "
            f"steps (orange) scale what came before by 16; WS: four neighbouring rows of "
            f"a column, OS: four cycles of one PE. Values from the gate-level FusedMAC.",
            fontsize=8)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return trace


if __name__ == "__main__":
    args = sys.argv[1:]
    draw(args[0] if args else "docs/fusion_int8_pe.png",
         *(int(v) for v in args[1:3]))
