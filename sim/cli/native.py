"""The simulation path and model on the command line (``--path``, ``--model``,
``--save-stream``; what they choose and run: :mod:`sim.paths`), and ``systolic play``.
"""
from sim.paths import NATIVE_FROM_CYCLES, TWIN_FROM_CYCLES
from .common import (UsageError, add_array_options, add_mac_options, add_split_options,
                     array_config, check_writable, split_config)

__all__ = ["add_path_options", "path_options", "register"]


def add_path_options(g, *, save_stream=True):
    """``--path`` and ``--model`` (and ``--save-stream`` unless ``save_stream`` is
    False: commands that run many simulations)."""
    g.add_argument("--path", choices=["auto", "native", "cocotb"], default="auto",
                   help="simulation path: native (memory file played by a C++ harness / "
                        "Verilog player) or cocotb (per-cycle Python); default auto: "
                        f"native from {NATIVE_FROM_CYCLES:,} model cycles on")
    if save_stream:
        g.add_argument("--save-stream", metavar="FILE.hex",
                       help="native path: also write the operand stream (memory file) "
                            "there, for `systolic play`")
    g.add_argument("--model", choices=["auto", "gate", "twin"], default="auto",
                   help="gate: the gate-level design; twin: the same design with the "
                        "behavioural MAC, after a Yosys proof that both are equal "
                        f"(cached); default auto: twin from {TWIN_FROM_CYCLES:,} model "
                        "cycles on the native path")


def path_options(args, path):
    """The runners' keyword options from the command line once ``path`` is chosen:
    ``save_stream`` (checked writable; only on the native path)."""
    target = getattr(args, "save_stream", None)
    if target and path != "native":
        raise UsageError("--save-stream: only on the native path (--path native)")
    if target:
        check_writable(target, "--save-stream")
    return {"save_stream": target}


# ---------------------------------------------------------------- play

def register(sub):
    p = sub.add_parser("play", help="play an operand stream (memory file) on the native "
                                    "player of a design; write its results")
    p.add_argument("design", choices=["array", "split"])
    p.add_argument("--stream", required=True, metavar="FILE.hex",
                   help="the memory file (e.g. from systolic gemm --save-stream)")
    p.add_argument("-o", "--output", required=True, metavar="RESULTS",
                   help="the results: binary result events (Verilator) or result lines "
                        "(Icarus), see sim/native/stream.py")
    p.add_argument("--sim", choices=["verilator", "icarus"], default="icarus",
                   help="simulator (default icarus)")
    p.add_argument("--model", choices=["gate", "twin"], default="gate")
    p.add_argument("--generation", choices=["2005", "2012"], default="2005",
                   help="icarus: -g mode of the player build (default 2005)")
    add_mac_options(p)
    add_array_options(p)
    add_split_options(p)
    p.set_defaults(func=cmd_play)
    return p


def cmd_play(args):
    """``systolic play``: bad streams are bad input (one line, exit 2, no file)."""
    import os
    from pathlib import Path
    from sim.native.build import build_player, run_player
    from sim.native.run import array_layout, design_for, split_layout
    from sim.native.stream import StreamError, decode_results
    from sim.native.twin import TwinNotProven
    out = check_writable(args.output, "-o")
    stream = Path(args.stream)
    if not stream.is_file():
        raise UsageError(f"--stream: cannot read {stream}: no such file")
    if args.design == "array":
        config = array_config(args)
        layout_of, text_of = array_layout, (lambda c: c.verilog())
    else:
        args.dataflow = args.dataflow or "ws"
        config = split_config(args)
        layout_of, text_of = split_layout, (lambda c: c.verilog())
    try:
        design, _ = design_for(config, args.model)
    except TwinNotProven as e:
        raise UsageError(f"--model twin: {e}") from None
    build = build_player(text_of(design), layout_of(design), design.slug, args.sim,
                         model=args.model, generation=args.generation)
    tmp = out.with_name(f".{out.name}.partial")
    try:
        seconds, cpu = run_player(build, stream, tmp)
    except StreamError as e:
        raise UsageError(f"--stream: {e}") from None
    else:
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    with open(stream, "rb") as f:
        jobs = int(f.read(64).split()[2], 16)       # the player has checked the header
    traces = decode_results(out, layout_of(design), jobs)
    events = sum(len(tr[f"events_{i}"][0]) for tr in traces for i in range(
        len(layout_of(design).outputs)))
    print(f"{len(traces)} job(s), {events} results in {cpu:.2f} s CPU on {args.sim} "
          f"({design.slug}) -> {out}")
    return 0
