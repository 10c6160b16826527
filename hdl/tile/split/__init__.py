"""The split tile: the splittable WS array cut into all its tiles, each with its own
memories, feeders and collector; GEMMs staged per sub-array of any guillotine mode and
started together (:mod:`hdl.tile.split.top`)."""
from .config import (SplitTileConfig, SPLIT_MODE, SubTiles, TileRole, bands, sub_tiles,
                     tile_roles, mode_words)
from .top import SplitTile, split_tile_verilog, SPLIT_TILE_TOP, split_ports

__all__ = ["SplitTileConfig", "SPLIT_MODE", "SubTiles", "TileRole", "bands", "sub_tiles",
           "tile_roles", "mode_words", "SplitTile", "split_tile_verilog", "SPLIT_TILE_TOP",
           "split_ports"]
