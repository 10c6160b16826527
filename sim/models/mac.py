"""Pure-Python reference models, written from the port contract alone.

Nothing here imports :mod:`hdl`: the model is an independent statement of what the
hardware must do, so a bug shared by the generator and its checker is unlikely.
"""

from sim.models.fp4 import fp4_values

__all__ = ["MacModel"]


class MacModel:
    """Cycle-accurate model of one MAC as seen at its ports.

    ``step(a, b, rst)`` models one rising clock edge and returns ``acc`` after it:

    * ``rst`` set: ``acc`` and every pipeline stage become 0 (the inputs are dropped);
    * otherwise the product of (a, b) enters a ``pipeline``-deep delay line and the
      product leaving it is added to ``acc`` modulo ``2**acc_width``. With
      ``pipeline == 0`` the product of this edge's inputs is added at this edge.

    ``a`` and ``b`` are the raw port bits (``0 .. 2**operand_width - 1``); with
    ``signed`` they are read as two's complement. ``numerics="fp4"``: they are E2M1
    codes, decoded by ``ml_dtypes.float4_e2m1fn`` (:mod:`sim.models.fp4`), and the
    product added is ``4*a*b`` (the accumulator counts quarters; signed). ``acc`` is
    returned as the raw unsigned port value; :meth:`signed_acc` gives its two's-complement reading.
    ``wraps`` counts the additions that overflowed (or underflowed) the accumulator's
    range, two's complement when ``signed``; it lets a bench check its own stimulus.
    """

    def __init__(self, *, signed=None, acc_width, pipeline, operand_width=4,
                 numerics=None):
        if numerics is None:
            if signed is None:
                raise ValueError("give signed (int4/uint4) or numerics")
            numerics = "int4" if signed else "uint4"
        if numerics not in ("int4", "uint4", "fp4"):
            raise ValueError(f"unknown numerics {numerics!r}; allowed: int4, uint4, fp4")
        if numerics == "fp4" and operand_width != 4:
            raise ValueError(f"FP4 codes are 4 bits, not {operand_width}")
        self.numerics = numerics
        signed = numerics != "uint4"
        if not isinstance(acc_width, int) or acc_width < 1:
            raise ValueError(f"acc_width must be a positive int, not {acc_width!r}")
        if not isinstance(pipeline, int) or pipeline < 0:
            raise ValueError(f"pipeline must be a non-negative int, not {pipeline!r}")
        if not isinstance(operand_width, int) or operand_width < 1:
            raise ValueError(f"operand_width must be a positive int, not {operand_width!r}")
        self.signed = bool(signed)
        self.acc_width = acc_width
        self.pipeline = pipeline
        self.operand_width = operand_width
        self.reset()

    def reset(self):
        """Back to the state after a reset edge (also the power-on state)."""
        self.acc = 0
        self._stages = [0] * self.pipeline    # _stages[0] is the newest product
        self.wraps = 0      # additions whose exact result did not fit (overflow/underflow)

    def operand(self, raw):
        """The integer a port value stands for."""
        n = self.operand_width
        if not isinstance(raw, int) or not 0 <= raw < 1 << n:
            raise ValueError(f"operand must be an int in 0..{(1 << n) - 1}, not {raw!r}")
        if self.numerics == "fp4":
            twice = 2 * float(fp4_values(raw))            # 2v is an integer for E2M1
            return int(twice)
        if self.signed and raw >> (n - 1):
            return raw - (1 << n)
        return raw

    def step(self, a, b, rst=False):
        """One rising edge with inputs ``a``, ``b``, ``rst``; returns ``acc`` after it."""
        product = self.operand(a) * self.operand(b)
        if rst:
            self.acc = 0
            self._stages = [0] * self.pipeline
            return self.acc
        if self.pipeline:
            arriving = self._stages.pop()
            self._stages.insert(0, product)
        else:
            arriving = product
        exact = self.signed_acc() if self.signed else self.acc
        total = exact + arriving
        low = -(1 << (self.acc_width - 1)) if self.signed else 0
        if not low <= total < low + (1 << self.acc_width):
            self.wraps += 1
        self.acc = total % (1 << self.acc_width)
        return self.acc

    def signed_acc(self, value=None):
        """``value`` (default: the current ``acc``) read as two's complement."""
        value = self.acc if value is None else value
        if value >> (self.acc_width - 1):
            return value - (1 << self.acc_width)
        return value

    def __repr__(self):
        return (f"MacModel(numerics={self.numerics!r}, acc_width={self.acc_width}, "
                f"pipeline={self.pipeline}, acc={self.acc:#x})")
