"""Parameters of an accelerator tile (:mod:`hdl.tile`) and its error codes."""
from dataclasses import dataclass
from enum import IntEnum
from math import ceil

from ..array import ArrayConfig, os_chains
from ..mac import ConfigError

__all__ = ["TileConfig", "TileError", "HostOp", "Mem", "DIM_BITS", "ADDR_BITS", "os_chains"]

#: Bits of the M, K, N fields of a GEMM command (dimensions up to 4095).
DIM_BITS = 12
#: Bits of every address, base and stride field of the host interface.
ADDR_BITS = 16


class HostOp(IntEnum):
    """``host_op`` values (sampled with ``host_valid``)."""
    WRITE = 1       # LOAD: write host_wdata to (host_mem, host_bank, host_addr)
    READ = 2        # STORE: host_rdata holds the word one cycle later (host_rvalid)
    GEMM = 3        # run a GEMM with the command fields; done (and error) when finished


class Mem(IntEnum):
    """``host_mem`` values: which scratchpad a WRITE or READ addresses."""
    A = 0
    B = 1
    C = 2


class TileError(IntEnum):
    """``err_code`` values (``error`` high, with ``done``)."""
    NONE = 0
    ADDR_RANGE = 1  # WRITE/READ: memory, bank or address outside the scratchpads
    NO_FIT = 2      # GEMM: its A, B or C region runs past the end of its memory
    OVERLAP = 3     # GEMM: A (or B) blocks overlap: a stride shorter than one block
    MODE = 4        # GEMM: a mode (dataflow/split) this tile cannot run
    SHAPE = 5       # GEMM: M, K or N is 0, or K is above the accumulator's safe K
    BUSY = 6        # any op while a GEMM runs (or the power-up flush)


def _pow2(x):
    return x >= 1 and x & (x - 1) == 0


@dataclass(frozen=True)
class TileConfig:
    """A tile: the array ``array`` fed from scratchpads.

    A: ``a_banks`` banks of ``width``-bit words, ``depth`` words each; B likewise with
    ``b_banks``. The banks of one memory share their address: one *line* is
    ``banks * width`` bits, read in one cycle. An edge vector (R lanes of A, C lanes
    of B, 4 bits each) fills ``beats`` consecutive lines (:attr:`beats_a`,
    :attr:`beats_b`); the feeders need one vector per cycle, so ``beats > 1`` stalls
    the array (see :mod:`sim.models.tile`). C: one bank per output lane of the array
    (``c_width``-bit words, default the accumulator width W, ``c_depth`` each; two
    lanes per bank on the square OS tile, :attr:`paired`), so the collector writes
    every lane's result in the cycle it leaves the array. ``counters``:
    GEMM access counters on the host interface (for the benches; not part of the tile's logic area).
    """
    array: ArrayConfig
    width: int = 16
    a_banks: int = 1
    b_banks: int = 1
    depth: int = 256
    c_width: int | None = None
    c_depth: int = 256
    counters: bool = True

    def __post_init__(self):
        arr = self.array
        if not isinstance(arr, ArrayConfig):
            raise ConfigError("array", f"expected an ArrayConfig, got {type(arr).__name__}")
        if (arr.dataflow, arr.double_buffer, arr.fold_overlap) not in (
                ("os", False, False), ("os", True, True), ("ws", True, False),
                ("ws", True, True)):
            raise ConfigError("dataflow", "the tile runs the OS array (compact PE, or "
                                          "double-buffered with fold overlap) or the WS "
                                          "array with shadow weights")
        if arr.dataflow == "ws" and arr.fold_overlap and arr.rows <= arr.mac.latency + 1:
            raise ConfigError("rows", f"the WS tile with fold overlap needs more than "
                                      f"P + 1 = {arr.mac.latency + 1} rows")
        if arr.dataflow == "ws" and not 2 <= arr.rows <= arr.mac.max_safe_k:
            raise ConfigError("rows", f"the WS tile needs 2..{arr.mac.max_safe_k} rows (one "
                                      f"fold's sum must fit the accumulator), got {arr.rows}")
        if not (_pow2(arr.rows) and _pow2(arr.cols)):
            raise ConfigError("rows", f"the tile needs power-of-two rows and columns, got "
                                      f"{arr.rows}x{arr.cols}")
        for name, lo, hi in (("width", 1, 1024), ("a_banks", 1, 64), ("b_banks", 1, 64),
                             ("depth", 2, 1 << ADDR_BITS), ("c_depth", 2, 1 << ADDR_BITS)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ConfigError(name, f"{v!r} is out of range; allowed: {lo}..{hi}")
        if self.c_width is None:          # default: the accumulator width
            object.__setattr__(self, "c_width", arr.mac.acc_width)
        if isinstance(self.c_width, bool) or not isinstance(self.c_width, int) or \
                not arr.mac.acc_width <= self.c_width <= 64:
            raise ConfigError("c_width", f"{self.c_width!r}; allowed: the accumulator width "
                                         f"{arr.mac.acc_width}..64")

    @property
    def rows(self):
        return self.array.rows

    @property
    def cols(self):
        return self.array.cols

    @property
    def lanes(self):
        """Output lanes of the array (R + C - 1), one C bank each."""
        return self.array.out_lanes

    @property
    def drain(self):
        """Drain window of the compact OS PE: min(R, C) cycles per tile."""
        return min(self.rows, self.cols)

    @property
    def beats_a(self):
        """Lines of A per edge vector: ceil(R*4 / (a_banks*width))."""
        return ceil(self.rows * self.array.mac.width / (self.a_banks * self.width))

    @property
    def beats_b(self):
        """Lines of B per edge vector: ceil(C*4 / (b_banks*width))."""
        return ceil(self.cols * self.array.mac.width / (self.b_banks * self.width))

    @property
    def beats(self):
        """OS: cycles per edge vector, the slower of A and B (read in parallel)."""
        return max(self.beats_a, self.beats_b)

    @property
    def paired(self):
        """C banks shared by two output lanes: OS (compact PE), square array of at least
        2x2. Lanes d and d + m (m = R) drain one after the other, so bank d takes both,
        and between them their results fill exactly m words per tile; tiles come at least
        2m cycles apart (a stall only when K * beats < m). Otherwise one bank per lane."""
        return (self.dataflow == "os" and not self.overlap and self.rows == self.cols
                and self.rows >= 2)

    @property
    def c_banks(self):
        """Banks of C: R when :attr:`paired`, else one per output lane (R + C - 1)."""
        return self.rows if self.paired else self.lanes

    @property
    def skewed(self):
        """A and B are stored skewed: OS (compact PE), one line per edge vector, square
        array. Lane i of a block's line tau holds the block's vector tau - i (zero outside
        0..K-1), so a block is K + R - 1 lines (:attr:`tail` more than vectors) and the
        memory's output is already the skewed stream the array takes: no skew lines. The
        tail is read inside the drain window, so the cycles do not change. Otherwise
        every line holds one vector and the feeders delay lane i by i cycles."""
        return (self.dataflow == "os" and not self.overlap and self.beats == 1
                and self.rows == self.cols)

    @property
    def tail(self):
        """Lines a stored A or B block has beyond its vectors: R - 1 when
        :attr:`skewed`, else 0."""
        return self.rows - 1 if self.skewed else 0

    @property
    def max_k(self):
        """Largest K of one GEMM command: OS sums K in the array's W-bit accumulator (one
        pass); WS adds its folds in the C words."""
        if self.array.dataflow == "ws":
            return (1 << DIM_BITS) - 1
        return min(self.array.mac.max_safe_k, (1 << DIM_BITS) - 1)

    @property
    def edge_bytes(self):
        """Bytes per cycle the array's edges take when streaming: (R + C) * 4 / 8."""
        return (self.rows + self.cols) * self.array.mac.width / 8

    @property
    def sram_bytes(self):
        """Bytes per cycle A and B deliver at most: (a_banks + b_banks) * width / 8."""
        return (self.a_banks + self.b_banks) * self.width / 8

    @property
    def dataflow(self):
        return self.array.dataflow

    @property
    def overlap(self):
        """Fold overlap: OS, the double-buffered PE drains while the next tile computes;
        WS, the next fold's weights shift in while the current fold streams."""
        return self.array.fold_overlap

    @property
    def lane_len(self):
        """Per output lane: results per tile (its chain of PEs)."""
        return tuple(len(ch) for ch in os_chains(self.rows, self.cols))

    @property
    def slug(self):
        """File-name-safe name of the tile's hardware. The WS array's slug leaves fold
        overlap out (schedule only for the bare array), but the tile's WS logic differs
        with it (:mod:`hdl.tile.ws_overlap`): ``_fo`` (else the two shared a build
        directory and rebuilt each other)."""
        fo = "_fo" if self.dataflow == "ws" and self.overlap else ""
        return (f"tile_{self.array.slug}{fo}_w{self.width}_a{self.a_banks}_b{self.b_banks}"
                f"_d{self.depth}_c{self.c_width}x{self.c_depth}"
                f"{'' if self.counters else '_nocnt'}")
