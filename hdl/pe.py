"""Processing elements (PEs) of the systolic array, one class per dataflow.

Both PEs wrap the MAC datapath of :mod:`hdl.mac` (:func:`~hdl.mac.multiply_add`, or
:func:`~hdl.mac.behavioral_multiply_add` for ``multiplier="behavioral"``), so every MAC
option (signed, multiplier, adder, fused, acc width W, pipeline P) passes through
unchanged. Every output is a register (no combinational path from any input to any
output) and operands move one PE per clock. Every register is cleared by ``rst``
(synchronous, active high), except in the compact OS PE, which has no reset at all: its
registers are flushed by data, with :func:`init_cycles` cycles of drain after power-up
(datapath flops without reset are the usual ASIC practice; here they save the reset
gate of 25 flops per PE).

Weight-stationary PE (:class:`WSPE`)::

    a_in[3:0] sw_in v_in  ->  a_out  sw_out  v_out     (to the right neighbour, +1 cycle)
    w_in[3:0] w_en        ->  w_out                    (weight shift chain, downwards)
    psum_in[W-1:0] pv_in  ->  psum_out pv_out          (partial sums, downwards)

    wsh   : shadow weight; if w_en: wsh := w_in.  w_out = wsh.
    w_cur = sw_in ? wsh : wact;  wact := w_cur        (swap travels with the activation)
    (compact PE, double_buffer=False: no wact, no swap flag; w_cur = wsh, so a column's
    weights may only shift once its last activation has passed)
    psum_out := psum_in + a_in(t-P) * w_cur(t-P)      (addend joins in the last stage)
    pv_out   := pv_in | v_in(t-P)

Output-stationary PE (:class:`OSPE`), two variants chosen by ``double_buffer``. Both
move A right and B down one PE per clock, and both drain finished sums along the
anti-diagonal: ``d_in`` comes from the PE up and to the right (row - 1, column + 1),
``d_out`` goes down and to the left, so every PE of anti-diagonal ``i + j`` finishes in
the same cycle and the whole diagonal shifts out as one chain (see :mod:`hdl.array`)::

    a_in[3:0] flag_in  ->  a_out flag_out              (to the right, +1 cycle)
    b_in[3:0]          ->  b_out                       (downwards, +1 cycle)
    d_in[W-1:0] (dv_in) -> d_out dv_out                (drain, down-left, +1 cycle)
    total = acc + a_in(t-P) * b_in(t-P)

``double_buffer=True`` (fold overlap: the drain runs while the next tile computes);
``flag`` is ``last``, set with the tile's last k::

    L = last_in(t-P)
    acc    := L ? 0 : total
    d_out  := L ? total : d_in       (capture the finished sum, else shift)
    dv_out := L | dv_in

``double_buffer=False`` (compact: the accumulator is the drain register, no second W-bit
register, no clear); ``flag`` is ``drain``, set from the tile's last k for ``min(R, C)``
cycles (zeros on a and b after the last k)::

    S = drain_in(t-1-P)              (for P = 0 this is drain_out itself)
    acc    := S ? d_in : total       (shift the diagonal, else accumulate)
    d_out  = acc;  dv_out = S        (the exit PEs' acc and S are the array outputs)

After ``min(R, C)`` shifts every accumulator holds the zeros shifted in at the array
edge, ready for the next tile. The same drain, played once after power-up with zeros on
a and b, clears whatever the registers woke up with: row ``i`` raises ``drain`` in
cycles ``i .. i + min(R, C) - 1``, and the first tile may start in cycle
``min(R, C) + 1`` (:func:`init_cycles`). The product pipeline (P > 0) keeps its reset.
"""
from amaranth.hdl import Module, Signal, Cat, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .gates import Netlist
from .mac import MacConfig, behavioral_multiply_add, delay_chain, multiply_add
from .fusion import TAGS, check_fusion, multiply_add_any

__all__ = ["WSPE", "OSPE", "build_pe", "init_cycles", "default_double_buffer", "pe_kind",
           "os_flag"]


def init_cycles(rows, cols):
    """Cycles of the power-up flush of the compact OS array (see the module docstring)."""
    return min(rows, cols) + 1


def _mac(m, a, b, addend, cfg, tags=None):
    """``addend + a*b`` (W bits) with ``cfg.pipeline`` stages on the product path; with
    ``tags`` (a fused PE) the digit step of :func:`hdl.fusion.fused_multiply_add`."""
    if tags is not None:
        return multiply_add_any(m, a, b, tags, addend, cfg)
    if cfg.behavioral:
        return behavioral_multiply_add(m, a, b, addend, cfg)[:len(addend)]
    return Cat(*multiply_add(m, Netlist(m), list(a), list(b), list(addend), cfg))


class WSPE(wiring.Component):
    """Weight-stationary PE; see the module docstring for its exact behaviour.

    Ports (n = ``config.width`` = 4, W = ``config.acc_width``, 8..64; every output a
    register)::

        in   a_in[n]  v_in  sw_in        out  a_out[n]  v_out  sw_out     (to the right)
        in   w_in[n]  w_en               out  w_out[n]                    (downwards)
        in   psum_in[W]  pv_in           out  psum_out[W]  pv_out         (downwards)

    Parameters: ``config``, a :class:`hdl.mac.MacConfig`; ``double_buffer``: True
    (default) for the PE with a shadow weight register and the swap flag (fold overlap,
    and the splittable array); False for the compact PE whose one weight register is the
    shift chain (no ``sw_in``/``sw_out``). :attr:`latency`: ``psum_out`` after edge t
    holds the product of the operands sampled at edge ``t - latency``."""

    @property
    def latency(self):
        """The MAC's latency P (:attr:`hdl.mac.MacConfig.latency`); a_out, v_out, sw_out
        and w_out follow their inputs by one edge."""
        return self.config.latency

    def __init__(self, config: MacConfig, *, double_buffer: bool = True,
                 fusion: str = "none", pe_gate: bool = False):
        self.config = config
        self.double_buffer = bool(double_buffer)
        self.fusion = check_fusion(fusion, numerics=config.numerics)
        self.pe_gate = bool(pe_gate)
        n, w = config.width, config.acc_width
        sw_in = {"sw_in": In(1)} if self.double_buffer else {}
        sw_out = {"sw_out": Out(1)} if self.double_buffer else {}
        gate = {"en_d": Out(1)} if self.pe_gate else {}
        super().__init__({**gate,
            "a_in": In(n), **sw_in, "v_in": In(1), **_tag_ports(fusion, "in", In),
            "w_in": In(n), "w_en": In(1),
            "psum_in": In(w), "pv_in": In(1),
            "a_out": Out(n), **sw_out, "v_out": Out(1), **_tag_ports(fusion, "out", Out),
            "w_out": Out(n),
            "psum_out": Out(w), "pv_out": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        if self.double_buffer:
            wact = Signal(cfg.width, name="wact")
        if self.pe_gate:
            # the shadow (or only) register on its own clock, gated by w_en (hdl.pe_gate):
            # the gate is the load enable, no multiplexer
            m.d.wgt += self.w_out.eq(self.w_in)
        else:
            with m.If(self.w_en):
                m.d.sync += self.w_out.eq(self.w_in)    # the shadow (or only) register
        stmts = []
        if self.double_buffer:
            w_cur = Signal(cfg.width, name="w_cur")
            m.d.comb += w_cur.eq(Mux(self.sw_in, self.w_out, wact))
            stmts.append(wact.eq(w_cur))
        else:
            w_cur = self.w_out
        stmts.append(self.a_out.eq(self.a_in))
        if self.double_buffer:
            stmts.append(self.sw_out.eq(self.sw_in))
        # The MAC's pipeline registers join m.d.sync while this list is built: this order
        # fixes the emitted Verilog (and so every synthesis cache keyed on it).
        tags = _tags(self, "in")
        if tags is not None:
            stmts += [getattr(self, f"{t}_out").eq(v) for t, v in tags.items()]
        v_chain = delay_chain(m, self.v_in, cfg.pipeline, "v")
        stmts += [
            self.v_out.eq(self.v_in),
            self.psum_out.eq(_mac(m, self.a_in, w_cur, self.psum_in, cfg, tags)),
            self.pv_out.eq(self.pv_in | v_chain[-1]),
        ]
        m.d.sync += stmts
        if self.pe_gate:
            m.d.comb += self.en_d.eq(data_enable(self, v_chain))
        return m


def data_enable(pe, v_chain):
    """The enable of a gated WS PE's data clock (:mod:`hdl.pe_gate`): high while an
    operand, a partial sum or a swap flag is in the PE or at its inputs, and for one
    cycle after (so every register takes its inputs' rest value once). ``v_chain``:
    ``v_in`` and its ``P`` delayed copies (the product pipeline's valid bits)."""
    sigs = [*v_chain, pe.v_out, pe.pv_in, pe.pv_out]
    if pe.double_buffer:
        sigs += [pe.sw_in, pe.sw_out]
    tags = _tags(pe, "in")
    if tags is not None:
        sigs += [*tags.values(), *_tags(pe, "out").values()]
    en = sigs[0]
    for s in sigs[1:]:
        en = en | s
    return en


class OSPE(wiring.Component):
    """Output-stationary PE; see the module docstring for its exact behaviour.

    Ports (n = ``config.width`` = 4, W = ``config.acc_width``, 8..64; flag = ``last``
    when double-buffered, else ``drain``, :func:`os_flag`; every output a register)::

        in   a_in[n]  flag_in            out  a_out[n]  flag_out          (to the right)
        in   b_in[n]                     out  b_out[n]                    (downwards)
        in   d_in[W]  (dv_in)            out  d_out[W]  dv_out            (down-left)

    Parameters: ``config``, a :class:`hdl.mac.MacConfig`; ``double_buffer``: True for
    the PE with a separate drain register (fold overlap; it adds ``dv_in``), False
    (default) for the compact PE that drains through its accumulator.
    :attr:`latency`: the accumulator after edge t holds the product of the operands
    sampled at edge ``t - latency``."""

    @property
    def latency(self):
        """The MAC's latency P (:attr:`hdl.mac.MacConfig.latency`); a_out, flag_out and
        b_out follow their inputs by one edge, the drain chain by one edge per PE."""
        return self.config.latency

    def __init__(self, config: MacConfig, *, double_buffer: bool = False,
                 fusion: str = "none"):
        self.config = config
        self.double_buffer = bool(double_buffer)
        self.fusion = check_fusion(fusion, numerics=config.numerics)
        n, w = config.width, config.acc_width
        flag = os_flag(self.double_buffer)
        self.flag = flag
        ports = {"a_in": In(n), f"{flag}_in": In(1), **_tag_ports(fusion, "in", In),
                 "b_in": In(n), "d_in": In(w),
                 "a_out": Out(n), f"{flag}_out": Out(1), **_tag_ports(fusion, "out", Out),
                 "b_out": Out(n), "d_out": Out(w), "dv_out": Out(1)}
        if self.double_buffer:
            ports["dv_in"] = In(1)
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        acc = Signal(cfg.acc_width, name="acc", reset_less=not self.double_buffer)
        total = Signal(cfg.acc_width, name="total")
        tags = _tags(self, "in")
        m.d.comb += total.eq(_mac(m, self.a_in, self.b_in, acc, cfg, tags))
        if tags is not None and self.double_buffer:
            m.d.sync += [getattr(self, f"{t}_out").eq(v) for t, v in tags.items()]
        elif tags is not None:                   # reset-less, like a_r (flushed by data)
            for t, v in tags.items():
                reg = Signal(name=f"{t}_r", reset_less=True)
                m.d.sync += reg.eq(v)
                m.d.comb += getattr(self, f"{t}_out").eq(reg)
        if self.double_buffer:
            m.d.sync += [self.a_out.eq(self.a_in), self.b_out.eq(self.b_in)]
            last = delay_chain(m, self.last_in, cfg.pipeline, "last")[-1]
            m.d.sync += [
                self.last_out.eq(self.last_in),
                acc.eq(Mux(last, 0, total)),
                self.d_out.eq(Mux(last, total, self.d_in)),
                self.dv_out.eq(last | self.dv_in),
            ]
        else:
            # No reset: every register here is flushed by data (see init_cycles).
            a_r = Signal(cfg.width, name="a_r", reset_less=True)
            b_r = Signal(cfg.width, name="b_r", reset_less=True)
            drain_r = Signal(name="drain_r", reset_less=True)
            self.state = (a_r, b_r, drain_r, acc)    # the reset-less registers (tests)
            m.d.sync += [a_r.eq(self.a_in), b_r.eq(self.b_in), drain_r.eq(self.drain_in)]
            shift = delay_chain(m, drain_r, cfg.pipeline, "drain", reset_less=True)[-1]
            m.d.sync += acc.eq(Mux(shift, self.d_in, total))
            m.d.comb += [self.a_out.eq(a_r), self.b_out.eq(b_r), self.drain_out.eq(drain_r),
                         self.d_out.eq(acc), self.dv_out.eq(shift)]
        return m


def _tag_ports(fusion, side, direction):
    """The 1-bit ports of the digit tags of ``fusion`` (:data:`hdl.fusion.TAGS`): they
    travel with the A operand, one register per PE like ``a``."""
    return {f"{t}_{side}": direction(1) for t in TAGS[fusion]}


def _tags(pe, side):
    """``{tag: port}`` of a fused PE, or None for a plain one (its datapath unchanged)."""
    if pe.fusion == "none":
        return None
    return {t: getattr(pe, f"{t}_{side}") for t in TAGS[pe.fusion]}


def default_double_buffer(dataflow):
    """The PE variant when none is asked for: WS double-buffered (its shadow weights
    serve fold overlap and the splittable array), OS compact."""
    return dataflow == "ws"


def os_flag(double_buffer):
    """The OS PE's row flag: ``last`` (double-buffered PE: the tile's last k) or
    ``drain`` (compact PE: the drain window)."""
    return "last" if double_buffer else "drain"


def pe_kind(dataflow, double_buffer):
    """The short name of a PE variant used in slugs and labels: the dataflow, with
    ``db`` for the double-buffered OS PE and ``c`` for the compact WS PE (the
    non-default variant of each dataflow is the one marked)."""
    marks = {("os", True): "db", ("ws", False): "c"}
    return dataflow + marks.get((dataflow, bool(double_buffer)), "")


def build_pe(config: MacConfig, dataflow: str, *, double_buffer=None, fusion="none",
             pe_gate=False):
    """The PE component for ``dataflow`` ("ws" or "os"). ``double_buffer``: the variant
    with a second register for fold overlap (None: :func:`default_double_buffer`).
    ``fusion``: "none" (the int4 PE), or "w4a8"/"int8" for the PE that also runs
    int8 digits (:mod:`hdl.fusion`; extra ports ``ua``/``ub``/``x16`` ``_in``/``_out``)."""
    if double_buffer is None:
        double_buffer = default_double_buffer(dataflow)
    if dataflow == "ws":
        return WSPE(config, double_buffer=double_buffer, fusion=fusion, pe_gate=pe_gate)
    if dataflow == "os":
        return OSPE(config, double_buffer=double_buffer, fusion=fusion)
    raise ValueError(f"unknown dataflow {dataflow!r}; allowed: ws, os")
