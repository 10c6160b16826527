"""Processing elements (PEs) of the systolic array, one class per dataflow.

Both PEs wrap the MAC datapath of :mod:`hdl.mac` (:func:`~hdl.mac.multiply_add`, or
:func:`~hdl.mac.behavioral_multiply_add` for ``multiplier="behavioral"``), so every MAC
option (signed, multiplier, adder, fused, acc width W, pipeline P) passes through
unchanged. Every output is a register (no combinational path from any input to any
output), every register is cleared by ``rst`` (synchronous, active high), and operands
move one PE per clock.

Weight-stationary PE (:class:`WSPE`)::

    a_in[3:0] sw_in v_in  ->  a_out  sw_out  v_out     (to the right neighbour, +1 cycle)
    w_in[3:0] w_en        ->  w_out                    (weight shift chain, downwards)
    psum_in[W-1:0] pv_in  ->  psum_out pv_out          (partial sums, downwards)

    wsh   : shadow weight; if w_en: wsh := w_in.  w_out = wsh.
    w_cur = sw_in ? wsh : wact;  wact := w_cur        (swap travels with the activation)
    psum_out := psum_in + a_in(t-P) * w_cur(t-P)      (addend joins in the last stage)
    pv_out   := pv_in | v_in(t-P)

Output-stationary PE (:class:`OSPE`)::

    a_in[3:0] last_in  ->  a_out last_out               (to the right, +1 cycle)
    b_in[3:0]          ->  b_out                        (downwards, +1 cycle)
    d_in[W-1:0] dv_in  ->  d_out dv_out                 (drain chain, leftwards)

    total = acc + a_in(t-P) * b_in(t-P);  L = last_in(t-P)
    acc    := L ? 0 : total
    d_out  := L ? total : d_in       (capture the finished sum, else shift)
    dv_out := L | dv_in
"""
from amaranth.hdl import Module, Signal, Cat, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .gates import Netlist
from .mac import MacConfig, multiply_add, behavioral_multiply_add

__all__ = ["WSPE", "OSPE", "build_pe"]


def _delay(m, sig, stages, name):
    """``sig`` delayed by ``stages`` clock cycles (registers cleared by rst)."""
    for i in range(stages):
        reg = Signal(len(sig), name=f"{name}_d{i + 1}")
        m.d.sync += reg.eq(sig)
        sig = reg
    return sig


def _mac(m, a, b, addend, cfg):
    """``addend + a*b`` (W bits) with ``cfg.pipeline`` stages on the product path."""
    if cfg.behavioral:
        return behavioral_multiply_add(m, a, b, addend, cfg)[:len(addend)]
    return Cat(*multiply_add(m, Netlist(m), list(a), list(b), list(addend), cfg))


class WSPE(wiring.Component):
    """Weight-stationary PE; see the module docstring for its exact behaviour."""

    def __init__(self, config: MacConfig):
        self.config = config
        n, w = config.width, config.acc_width
        super().__init__({
            "a_in": In(n), "sw_in": In(1), "v_in": In(1),
            "w_in": In(n), "w_en": In(1),
            "psum_in": In(w), "pv_in": In(1),
            "a_out": Out(n), "sw_out": Out(1), "v_out": Out(1),
            "w_out": Out(n),
            "psum_out": Out(w), "pv_out": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        wact = Signal(cfg.width, name="wact")
        with m.If(self.w_en):
            m.d.sync += self.w_out.eq(self.w_in)        # w_out is the shadow register
        w_cur = Signal(cfg.width, name="w_cur")
        m.d.comb += w_cur.eq(Mux(self.sw_in, self.w_out, wact))
        m.d.sync += [
            wact.eq(w_cur),
            self.a_out.eq(self.a_in),
            self.sw_out.eq(self.sw_in),
            self.v_out.eq(self.v_in),
            self.psum_out.eq(_mac(m, self.a_in, w_cur, self.psum_in, cfg)),
            self.pv_out.eq(self.pv_in | _delay(m, self.v_in, cfg.pipeline, "v")),
        ]
        return m


class OSPE(wiring.Component):
    """Output-stationary PE; see the module docstring for its exact behaviour."""

    def __init__(self, config: MacConfig):
        self.config = config
        n, w = config.width, config.acc_width
        super().__init__({
            "a_in": In(n), "last_in": In(1), "b_in": In(n),
            "d_in": In(w), "dv_in": In(1),
            "a_out": Out(n), "last_out": Out(1), "b_out": Out(n),
            "d_out": Out(w), "dv_out": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        acc = Signal(cfg.acc_width, name="acc")
        total = Signal(cfg.acc_width, name="total")
        m.d.comb += total.eq(_mac(m, self.a_in, self.b_in, acc, cfg))
        last = _delay(m, self.last_in, cfg.pipeline, "last")
        m.d.sync += [
            self.a_out.eq(self.a_in),
            self.last_out.eq(self.last_in),
            self.b_out.eq(self.b_in),
            acc.eq(Mux(last, 0, total)),
            self.d_out.eq(Mux(last, total, self.d_in)),
            self.dv_out.eq(last | self.dv_in),
        ]
        return m


def build_pe(config: MacConfig, dataflow: str):
    """The PE component for ``dataflow`` ("ws" or "os")."""
    if dataflow == "ws":
        return WSPE(config)
    if dataflow == "os":
        return OSPE(config)
    raise ValueError(f"unknown dataflow {dataflow!r}; allowed: ws, os")
