"""``systolic gemm --precision int4|w4a8|int8 [--fusion none|w4a8|int8]``: int8 operands
on the fusable 4-bit array (hdl.fusion, sim.drivers.fusion)."""
import dataclasses

from hdl.fusion import FUSIONS, PRECISIONS
from sim.drivers.fusion import check_precision
from .common import UsageError

__all__ = ["add_precision_options", "fused_config", "fused_path", "split_fused_config"]


def add_precision_options(g):
    p = g.add_argument_group("precision (fusable array, hdl/fusion.py)")
    p.add_argument("--precision", choices=PRECISIONS, default="int4",
                   help="run-time precision (with --split: of every job without its own "
                        "\"precision\" in --jobs): int4 (default), w4a8 (A int8 -128..127, B "
                        "int4), int8 (A and B int8); W4A8 takes 2 PE steps per MAC, int8 4")
    p.add_argument("--fusion", choices=FUSIONS, default=None,
                   help="what the array is built for (default: none for int4, else the "
                        "precision); an int8 array also runs w4a8 and int4")


def fused_config(args, config):
    """``config`` built for ``--fusion`` (default: what ``--precision`` needs); exit 2
    if the array cannot run the precision."""
    fusion = args.fusion or ("none" if args.precision == "int4" else args.precision)
    if fusion != "none" and args.numerics != "int4":
        raise UsageError(f"--fusion {fusion}: fuses int4 digits; not with --numerics "
                         f"{args.numerics}")
    config = dataclasses.replace(config, fusion=fusion)
    try:
        check_precision(args.precision, config)
    except ValueError as e:
        raise UsageError(f"--precision: {e}") from None
    return config


def fused_path(args):
    """A fusable array runs on the cocotb path with the gate-level model (the native
    harness and the behavioural twin do not know the digit tags yet)."""
    if args.path == "native" or args.model == "twin":
        raise UsageError("--path native / --model twin: not for a fusable array yet; use "
                         "--path cocotb --model gate (the defaults pick them)")
    return "cocotb", "gate"


def split_fused_config(args, config, jobs, subs):
    """The split array ``config`` built for ``--fusion`` (default: the widest precision
    of the ``jobs``, ``(label, A, B, out, precision)`` or None per sub-array ``subs``),
    every job's precision checked against its sub-array: exit 2 with one line if one
    cannot run it."""
    precisions = {j[4] for j in jobs if j}
    widest = "int8" if "int8" in precisions else "w4a8" if "w4a8" in precisions else "none"
    fusion = args.fusion or widest
    if fusion != "none" and args.numerics != "int4":
        raise UsageError(f"--fusion {fusion}: fuses int4 digits; not with --numerics "
                         f"{args.numerics}")
    config = dataclasses.replace(config, fusion=fusion)
    for i, (job, sub) in enumerate(zip(jobs, subs)):
        if job is None:
            continue
        try:
            check_precision(job[4], config.sub_config(sub))
        except ValueError as e:
            raise UsageError(f"job {i} ({job[0]}) on sub-array {sub.index} ({sub.rows}x"
                             f"{sub.cols}): {e}") from None
    return config
