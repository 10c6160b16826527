"""``systolic verilog mac|array|split|mx-scale``: deterministic Verilog of one design."""
import sys

from hdl.emit import write_atomic
from .common import (add_array_options, add_mac_options, add_scale_options,
                     add_split_options, array_config, check_scale_options, check_writable,
                     mac_config, scale_unit, split_config)


def cmd_verilog(args):
    check_scale_options(args)
    if args.output != "-":
        check_writable(args.output, "-o")
    if args.design == "array":
        text = array_config(args).verilog()
    elif args.design == "split":
        text = split_config(args).verilog()
    elif args.design == "mx-scale":
        text = scale_unit(args).verilog()
    else:
        text = mac_config(args).verilog()
    if args.output == "-":
        sys.stdout.write(text)
    else:
        write_atomic(args.output, text)
        print(f"wrote {args.output} ({len(text.splitlines())} lines)", file=sys.stderr)
    return 0


def register(sub):
    v = sub.add_parser("verilog", help="write deterministic Verilog")
    v.add_argument("design", choices=["mac", "array", "split", "mx-scale"])
    add_mac_options(v)
    add_scale_options(v)
    add_array_options(v)
    add_split_options(v)
    v.add_argument("-o", "--output", default="-", metavar="FILE.v",
                   help="output file (default: stdout)")
    v.set_defaults(func=cmd_verilog)
