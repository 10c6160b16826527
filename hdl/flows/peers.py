"""External peers: other generators' MACs, exported to Verilog for the same flows.

PyRTL (pinned ``pyrtl==1.0.3``): ``rtllib.multipliers.signed_tree_multiplier`` (Wallace
tree, Kogge-Stone final adder) for the 4-bit signed product, sign-extended and added to
the accumulator with ``rtllib.adders.kogge_stone``. Ports match :class:`hdl.mac.MAC`:
``clk``, ``rst`` (synchronous, active high; PyRTL's own ``add_reset``), ``a``, ``b``,
``acc``; top module ``mac`` (or ``name``).

Known defect, reported by the bench rather than worked around: PyRTL's
``signed_tree_multiplier`` takes magnitudes with a conditional two's complement and then
multiplies only their low ``n-1`` bits, so the magnitude 8 of ``-8`` becomes 0 and every
product with an operand of ``-8`` (``0b1000``) is wrong (``-8 * 1`` gives 0). The formal
check (:func:`hdl.flows.formal.prove_equivalent` against the behavioural MAC) finds it.
"""
import io
import re

__all__ = ["pyrtl_mac_verilog", "pyrtl_multiplier_verilog", "pyrtl_mac_equivalent",
           "pyrtl_mac_check", "PYRTL_MAC_WIDTH"]

#: Operand width of the PyRTL peer (same as :data:`hdl.mac.OPERAND_WIDTH`).
PYRTL_MAC_WIDTH = 4


def _export(build, name, *, sequential=True):
    """Run ``build()`` in a fresh PyRTL working block and return its Verilog."""
    import pyrtl                                    # imported lazily: a dev dependency

    pyrtl.reset_working_block()
    try:
        build(pyrtl)
        out = io.StringIO()
        # add_reset=True: a synchronous reset input named ``rst`` that clears every
        # register; registers start at 0 in simulation (initialize_registers=True).
        pyrtl.output_to_verilog(out, add_reset=sequential, initialize_registers=True,
                                module_name=name)
        text = out.getvalue()
    finally:
        pyrtl.reset_working_block()
    if not sequential:
        # PyRTL always declares a clock; a combinational block has no use for it, and
        # an extra input would stop a port-by-port comparison with our multipliers.
        header = re.search(rf"module {re.escape(name)}\(clk, ([^)]*)\);\n", text)
        if not header or "clk" in text[header.end():].replace("input clk;", "", 1):
            raise RuntimeError("unexpected PyRTL output: cannot drop the unused clk port")
        text = (text[:header.start()] + f"module {name}({header.group(1)});\n"
                + text[header.end():].replace("    input clk;\n", "", 1))
    return text


def pyrtl_mac_verilog(acc_width=16, *, width=PYRTL_MAC_WIDTH, name="mac"):
    """Verilog of PyRTL's signed MAC: ``acc := rst ? 0 : acc + a*b`` (mod
    ``2**acc_width``), operands ``width``-bit two's complement."""
    if acc_width < 2 * width:
        raise ValueError(f"acc_width {acc_width} is narrower than the {2 * width}-bit product")

    def build(pyrtl):
        from pyrtl.rtllib import adders, multipliers

        a = pyrtl.Input(width, "a")
        b = pyrtl.Input(width, "b")
        acc = pyrtl.Output(acc_width, "acc")
        acc_reg = pyrtl.Register(acc_width, "acc_reg")
        product = multipliers.signed_tree_multiplier(
            a, b, reducer=adders.wallace_reducer, adder_func=adders.kogge_stone)
        addend = product[:2 * width].sign_extended(acc_width)
        acc_reg.next <<= adders.kogge_stone(acc_reg, addend)[:acc_width]
        acc <<= acc_reg

    return _export(build, name)


def pyrtl_multiplier_verilog(width=PYRTL_MAC_WIDTH, *, name="mul"):
    """Verilog of PyRTL's combinational signed tree multiplier alone: ports ``a``,
    ``b`` (``width`` bits) and ``p`` (``2 * width`` bits), as
    :class:`hdl.multipliers.Multiplier`."""
    def build(pyrtl):
        from pyrtl.rtllib import adders, multipliers

        a = pyrtl.Input(width, "a")
        b = pyrtl.Input(width, "b")
        p = pyrtl.Output(2 * width, "p")
        p <<= multipliers.signed_tree_multiplier(
            a, b, reducer=adders.wallace_reducer, adder_func=adders.kogge_stone)[:2 * width]

    return _export(build, name, sequential=False)


def pyrtl_mac_equivalent(acc_width=16, *, depth=None):
    """Is PyRTL's MAC formally equivalent to our behavioural signed MAC of the same
    accumulator width? (It is not: see the module docstring.) Returns the
    :class:`hdl.flows.formal.EquivResult`'s ``equivalent``; Yosys failures raise."""
    return pyrtl_mac_check(acc_width, depth=depth).equivalent


def pyrtl_mac_check(acc_width=16, *, depth=None):
    """The full :class:`hdl.flows.formal.EquivResult` (log and counterexample) of the check
    in :func:`pyrtl_mac_equivalent`: k-induction from the all-zero initial state."""
    from ..emit import to_verilog
    from .formal import prove_equivalent
    from ..mac import MacConfig

    gold = to_verilog(MacConfig(signed=True, acc_width=acc_width,
                                multiplier="behavioral").build(), name="gold_mac")
    return prove_equivalent(gold, "gold_mac", pyrtl_mac_verilog(acc_width), "mac",
                            sequential=True, depth=depth)
