"""``systolic``: the command-line front end.

    systolic verilog mac [MAC options] -o FILE.v
    systolic synth mac   [MAC options] [--compare] [--json FILE] [--md FILE]
    systolic sim mac     [MAC options] [--sim verilator|icarus ...]
    systolic play array|split --stream FILE.hex -o RESULTS [design options]
    systolic demo
    systolic digits      [--rows R --cols C] [--numerics int4|mxfp4|w4a8] [--limit N]
    systolic energy      mac|pe|array|split [design options] [--data SET] [--zero-delay]
    systolic bench
    systolic sweep       [--config FILE.toml] [-o DIR] [options]
    systolic report      [-o DIR] [--only PART] [--docs DIR]
    systolic workload    CONFIG [--phase prefill|decode] [--compare] [options]
    systolic tile        --random M K N [--width W --a-banks N ...] [--json F --md F]

Bad input gets one line on stderr naming the option and what it allows, exit status 2,
and no output file.
"""

import sys

from hdl.mac import ConfigError
from . import (demo, digits, energy, gemm, native, plan, simulate, studies, synth, tile,
               verilog, workload)
from .cluster import ExecutorError
from .common import Parser, UsageError, flag_for


def build_parser():
    p = Parser(prog="systolic", description="Gate-level low-precision MAC and systolic "
                "array generator: Verilog, simulation, synthesis.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)

    for module in (verilog, synth, simulate, gemm, native, plan, studies, demo, workload,
                   digits, tile, energy):
        module.register(sub)
    return p


def main(argv=None):
    from sim.runner import SimulatorUnavailable
    from hdl.flows.synth import YosysError
    from sim.paths import PathError
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except (UsageError, ExecutorError) as e:
        print(f"systolic: error: {e}", file=sys.stderr)
        return 2
    except ConfigError as e:
        print(f"systolic: error: {flag_for(e.field)}: {e.message}", file=sys.stderr)
        return 2
    except PathError as e:
        print(f"systolic: error: {e.option} {e}", file=sys.stderr)
        return 2
    except SimulatorUnavailable as e:
        print(f"systolic: error: --sim: {e}", file=sys.stderr)
        return 2
    except YosysError as e:
        print(f"systolic: error: yosys: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("systolic: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
