"""Parameters of the split tile and the geometry of its modes (tile-grid level).

A mode is a pair of cut words (``row_cut``, ``col_cut``: bit b-1 = a cut at tile-row
(tile-column) boundary b, as :mod:`hdl.split`); its sub-arrays are the rectangles of
tiles between the cuts, numbered row-major. A tile's *role* in a mode: its sub-array,
its offsets inside it (``oy``, ``ox`` tiles) and the sub-array's size (``nr`` x ``nc``
tiles).
"""
from dataclasses import dataclass

from ...mac import ConfigError
from ...split import SplitConfig, SplitMode
from ..config import TileConfig

__all__ = ["SplitTileConfig", "SPLIT_MODE", "SubTiles", "TileRole", "bands", "sub_tiles",
           "tile_roles", "mode_words"]

#: The GEMM ``mode`` of the split tile (any other value: MODE). The cuts are the command's
#: ``row_cut`` / ``col_cut`` words.
SPLIT_MODE = 1


@dataclass(frozen=True)
class SplitTileConfig:
    """``grid`` x ``grid`` tiles, each the WS tile ``sub`` (its array: one tile of the
    splittable array, its memories, feeders and collector)."""
    sub: TileConfig
    grid: int = 2

    def __post_init__(self):
        if self.sub.dataflow != "ws" or self.sub.rows != self.sub.cols:
            raise ConfigError("dataflow", "the split tile runs square WS sub-arrays only")
        if self.sub.overlap:
            raise ConfigError("fold_overlap", "the split tile runs the sequential WS "
                                              "schedule (fold_overlap false)")
        if isinstance(self.grid, bool) or not isinstance(self.grid, int) or \
                not 2 <= self.grid <= 4:
            raise ConfigError("grid", f"{self.grid!r}; allowed: 2..4")

    @property
    def subs(self):
        """Tiles of the grid (= sub-arrays of mode ``tiles``)."""
        return self.grid * self.grid

    @property
    def size(self):
        """Rows (= columns) of the whole array."""
        return self.sub.rows * self.grid

    @property
    def split(self):
        """The splittable array (:class:`hdl.split.SplitConfig`, ports style)."""
        return SplitConfig(self.size, self.size, self.sub.rows, self.sub.array.mac,
                           style="ports", dataflow="ws")

    @property
    def slug(self):
        return f"split{self.grid}x{self.grid}_{self.sub.slug}"


def bands(cut, G):
    """Per tile row (or column) of a grid of ``G``: ``(band, offset, size)`` for the cut
    word ``cut`` (bit b-1: a cut at boundary b)."""
    starts = [0] + [b for b in range(1, G) if cut >> (b - 1) & 1] + [G]
    out = []
    for i in range(len(starts) - 1):
        for g in range(starts[i], starts[i + 1]):
            out.append((i, g - starts[i], starts[i + 1] - starts[i]))
    return out


@dataclass(frozen=True)
class SubTiles:
    """Sub-array ``index`` of a mode: tiles ``g0 .. g0+nr-1`` x ``j0 .. j0+nc-1``."""
    index: int
    g0: int
    j0: int
    nr: int
    nc: int


@dataclass(frozen=True)
class TileRole:
    sub: int          # its sub-array
    oy: int           # tile offsets inside the sub-array
    ox: int
    nr: int           # the sub-array's tiles
    nc: int

    @property
    def bottom(self):
        """The tile's results leave the sub-array (its collector writes C)."""
        return self.oy == self.nr - 1


def sub_tiles(G, row_cut, col_cut):
    """The sub-arrays (:class:`SubTiles`) of the mode, row-major."""
    rb, cb = bands(row_cut, G), bands(col_cut, G)
    out = []
    for g in range(G):
        for j in range(G):
            if rb[g][1] == 0 and cb[j][1] == 0:
                out.append(SubTiles(len(out), g, j, rb[g][2], cb[j][2]))
    return out


def tile_roles(G, row_cut, col_cut):
    """Per tile t = g*G + j: its :class:`TileRole`."""
    rb, cb = bands(row_cut, G), bands(col_cut, G)
    ncb = cb[-1][0] + 1
    return [TileRole(rb[g][0] * ncb + cb[j][0], rb[g][1], cb[j][1], rb[g][2], cb[j][2])
            for g in range(G) for j in range(G)]


def mode_words(cfg: SplitTileConfig, mode):
    """``(row_cut, col_cut)`` of ``mode``: a name of :data:`hdl.split.MODE_NAMES`, a
    ``(row_cuts, col_cuts)`` pair of 1-based boundaries, a :class:`SplitMode`, or already a
    pair of words ``("words", row_cut, col_cut)``. ValueError (one line) otherwise."""
    if isinstance(mode, tuple) and len(mode) == 3 and mode[0] == "words":
        rc, cc = int(mode[1]), int(mode[2])
        top = 1 << (cfg.grid - 1)
        if not (0 <= rc < top and 0 <= cc < top):
            raise ValueError(f"cut words {rc}, {cc}: allowed 0..{top - 1}")
        return rc, cc
    sm = cfg.split.mode(mode if not isinstance(mode, SplitMode) else mode)
    return (sum(1 << (b - 1) for b in sm.row_cuts), sum(1 << (b - 1) for b in sm.col_cuts))
