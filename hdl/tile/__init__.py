"""An accelerator tile: the systolic array fed from its own scratchpad memories.

:mod:`hdl.tile.config` (parameters, host ops, error codes), :mod:`hdl.tile.logic`
(controller, feeders, collector), :mod:`hdl.tile.top` (memories + logic + array and
the Verilog). Exact timing: :mod:`hdl.tile.logic`'s docstring and
:mod:`sim.models.tile`.
"""
from .config import TileConfig, TileError, HostOp, Mem, DIM_BITS, ADDR_BITS
from .top import Tile, tile_verilog, logic_verilog, TILE_TOP, LOGIC_TOP

__all__ = ["TileConfig", "TileError", "HostOp", "Mem", "DIM_BITS", "ADDR_BITS", "Tile",
           "tile_verilog", "logic_verilog", "TILE_TOP", "LOGIC_TOP"]
