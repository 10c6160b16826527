"""``systolic verilog mac|array|split|mx-scale``: deterministic Verilog of one design."""
import dataclasses
import sys

from hdl.emit import write_atomic
from hdl.fusion import FUSIONS
from .common import (UsageError, add_array_options, add_mac_options, add_scale_options,
                     add_split_options, array_config, check_scale_options, check_writable,
                     mac_config, scale_unit, split_config)


def cmd_verilog(args):
    check_scale_options(args)
    if args.output != "-":
        check_writable(args.output, "-o")
    if args.fusion != "none" and args.design not in ("array", "split"):
        raise UsageError(f"--fusion: for the array and split designs, not {args.design}")
    if args.design == "array":
        text = dataclasses.replace(array_config(args), fusion=args.fusion).verilog()
    elif args.design == "split":
        text = dataclasses.replace(split_config(args), fusion=args.fusion).verilog()
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
    v.add_argument("--fusion", choices=FUSIONS, default="none",
                   help="array/split: every PE the fused digit PE that also runs W4A8 "
                        "(w4a8) or W4A8 and int8 (int8), hdl/fusion.py")
    v.add_argument("-o", "--output", default="-", metavar="FILE.v",
                   help="output file (default: stdout)")
    v.set_defaults(func=cmd_verilog)
