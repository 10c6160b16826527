"""The R x C array of :mod:`hdl.array` as one flat Amaranth design, for comparison:
Amaranth's own ``verilog.convert`` flattens all R*C PEs into one module (its time and
size grow with R*C, where :func:`hdl.array.array_verilog` emits the PE once), and
``amaranth.sim`` simulates it directly (:mod:`sim.drivers.amaranth`)."""
import time

from .array import DATAFLOWS, TOPLEVEL
from .emit import to_verilog
from .pe import build_pe, default_double_buffer, os_flag

__all__ = ["AmaranthArray", "amaranth_flat_verilog"]


class AmaranthArray:
    """The same R x C array as one flat Amaranth design: a single Elaboratable holding
    R*C PE submodules, with the ports of ``systolic_array`` (see the module docstring).

    For comparison only: Amaranth's own ``verilog.convert`` of this flattens all R*C
    PEs into one module (its time and size grow with R*C), and ``amaranth.sim`` can
    simulate it directly. Built lazily so importing :mod:`hdl.array` stays cheap."""

    def __new__(cls, rows, cols, dataflow, mac, *, double_buffer=None):
        if double_buffer is None:
            double_buffer = default_double_buffer(dataflow)
        return _amaranth_array(rows, cols, dataflow, mac, double_buffer)


def _amaranth_array(rows, cols, dataflow, mac, double_buffer):
    from amaranth.hdl import Module, Cat
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    if dataflow not in DATAFLOWS:
        raise ValueError(f"unknown dataflow {dataflow!r}; allowed: {', '.join(DATAFLOWS)}")
    R, C, n, W = rows, cols, mac.width, mac.acc_width

    if dataflow == "ws":
        ports = {"a_in": In(R * n), "a_valid": In(R),
                 "w_in": In(C * n), "w_en": In(C),
                 "c_out": Out(C * W), "c_valid": Out(C)}
        if double_buffer:
            ports["a_swap"] = In(R)
    else:
        flag = os_flag(double_buffer)
        ports = {"a_in": In(R * n), f"a_{flag}": In(R), "b_in": In(C * n),
                 "c_out": Out((R + C - 1) * W), "c_valid": Out(R + C - 1)}

    class _Array(wiring.Component):
        def __init__(self):
            super().__init__(ports)
            self.rows, self.cols, self.dataflow, self.mac = R, C, dataflow, mac

        def elaborate(self, platform):
            m = Module()
            pes = [[build_pe(mac, dataflow, double_buffer=double_buffer) for _ in range(C)]
                   for _ in range(R)]
            self.pes = [pe for row in pes for pe in row]
            for r in range(R):
                for c in range(C):
                    m.submodules[f"pe_{r}_{c}"] = pes[r][c]
            if dataflow == "ws":
                for r in range(R):
                    for c in range(C):
                        pe = pes[r][c]
                        if c == 0:
                            m.d.comb += [pe.a_in.eq(self.a_in[r * n:(r + 1) * n]),
                                         pe.v_in.eq(self.a_valid[r])]
                            if double_buffer:
                                m.d.comb += pe.sw_in.eq(self.a_swap[r])
                        else:
                            left = pes[r][c - 1]
                            m.d.comb += [pe.a_in.eq(left.a_out), pe.v_in.eq(left.v_out)]
                            if double_buffer:
                                m.d.comb += pe.sw_in.eq(left.sw_out)
                        if r == 0:
                            m.d.comb += [pe.w_in.eq(self.w_in[c * n:(c + 1) * n]),
                                         pe.psum_in.eq(0), pe.pv_in.eq(0)]
                        else:
                            up = pes[r - 1][c]
                            m.d.comb += [pe.w_in.eq(up.w_out), pe.psum_in.eq(up.psum_out),
                                         pe.pv_in.eq(up.pv_out)]
                        m.d.comb += pe.w_en.eq(self.w_en[c])
                m.d.comb += [self.c_out.eq(Cat(*(pes[R - 1][c].psum_out for c in range(C)))),
                             self.c_valid.eq(Cat(*(pes[R - 1][c].pv_out for c in range(C))))]
            else:
                flag = pes[0][0].flag
                for r in range(R):
                    for c in range(C):
                        pe = pes[r][c]
                        f_in = getattr(pe, f"{flag}_in")
                        if c == 0:
                            m.d.comb += [pe.a_in.eq(self.a_in[r * n:(r + 1) * n]),
                                         f_in.eq(getattr(self, f"a_{flag}")[r])]
                        else:
                            left = pes[r][c - 1]
                            m.d.comb += [pe.a_in.eq(left.a_out),
                                         f_in.eq(getattr(left, f"{flag}_out"))]
                        if r == 0:
                            m.d.comb += pe.b_in.eq(self.b_in[c * n:(c + 1) * n])
                        else:
                            m.d.comb += pe.b_in.eq(pes[r - 1][c].b_out)
                        if r > 0 and c < C - 1:     # anti-diagonal drain chain
                            up_right = pes[r - 1][c + 1]
                            m.d.comb += pe.d_in.eq(up_right.d_out)
                            if double_buffer:
                                m.d.comb += pe.dv_in.eq(up_right.dv_out)
                exits = [pes[r][0] for r in range(R)] + [pes[R - 1][c] for c in range(1, C)]
                m.d.comb += [self.c_out.eq(Cat(*(pe.d_out for pe in exits))),
                             self.c_valid.eq(Cat(*(pe.dv_out for pe in exits)))]
            return m

    return _Array()


def amaranth_flat_verilog(rows, cols, dataflow, mac, *, double_buffer=None, stats=None):
    """Amaranth's default conversion of :class:`AmaranthArray` (one flat module named
    ``systolic_array``); ``stats`` as for :func:`array_verilog`."""
    t0 = time.perf_counter()
    text = to_verilog(AmaranthArray(rows, cols, dataflow, mac, double_buffer=double_buffer),
                      name=TOPLEVEL)
    if isinstance(stats, dict):
        stats["seconds"] = time.perf_counter() - t0
        stats["bytes"] = len(text.encode())
    return text
