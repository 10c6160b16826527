"""Stand-alone FP4 multipliers (``p = 4*a*b``, 9-bit two's complement, combinational),
for equivalence checks and area runs: the MAC datapath of :mod:`hdl.mac` with a zero
addend, so the proof covers exactly the gates the FP4 MAC uses."""
from amaranth.hdl import Module, Cat
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .gates import Netlist
from .mac import MacConfig, multiply_add, behavioral_multiply_add, FP4_MIN_ACC_WIDTH

__all__ = ["FP4Multiplier", "BehavioralFP4Multiplier", "PRODUCT_WIDTH"]

PRODUCT_WIDTH = FP4_MIN_ACC_WIDTH         # +-144 in two's complement


class FP4Multiplier(wiring.Component):
    """``p = 4*a*b`` of two E2M1 codes from gates (``multiplier``: an FP4 architecture of
    :class:`hdl.mac.MacConfig`, ``adder`` its carry-propagate adder)."""

    def __init__(self, *, multiplier="shift", adder="ripple", fused=True):
        self.config = MacConfig(numerics="fp4", multiplier=multiplier, adder=adder,
                                fused=fused, acc_width=PRODUCT_WIDTH)
        if self.config.behavioral:
            raise ValueError("use BehavioralFP4Multiplier for the behavioural reference")
        super().__init__({"a": In(4), "b": In(4), "p": Out(PRODUCT_WIDTH)})

    def elaborate(self, platform):
        m = Module()
        bits = multiply_add(m, Netlist(m), list(self.a), list(self.b),
                            [0] * PRODUCT_WIDTH, self.config)
        m.d.comb += self.p.eq(Cat(*bits))
        return m


class BehavioralFP4Multiplier(wiring.Component):
    """Reference: decode to magnitude, ``*``, negate; same ports."""

    def __init__(self):
        self.config = MacConfig(numerics="fp4", multiplier="behavioral",
                                acc_width=PRODUCT_WIDTH)
        super().__init__({"a": In(4), "b": In(4), "p": Out(PRODUCT_WIDTH)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.p.eq(behavioral_multiply_add(m, self.a, self.b, 0, self.config))
        return m
