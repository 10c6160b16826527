"""``systolic workload CONFIG``: the GEMMs of a language model, and whole vs split.

    systolic workload llama-3.2-1b --phase decode --batch 16 --context 1024
    systolic workload path/to/config.json --phase prefill --tokens 512 --compare \\
        --rows 64 --cols 64 --tile 16 --json w.json --md w.md --plot w.png
    systolic workload mixtral-8x7b --rtl --rows 16 --cols 16 --tile 8

``--rtl`` runs the model's real GEMM shapes (:func:`sim.studies.workload_rtl.rtl_gemms`)
in RTL with random operands, whole and split, and checks C and cycles (exit 1 if any
differs).
"""
import sys

from hdl.fusion import PRECISIONS
from .common import UsageError, int_in, add_mac_options, check_writable, mac_config

__all__ = ["register", "cmd_workload"]

DEFAULT_TOKENS = 512
DEFAULT_CONTEXT = 1024


def register(sub):
    """Add the ``workload`` subcommand to the subparsers ``sub``."""
    from sim.models.workload import MLA_FORMS, PHASES
    w = sub.add_parser("workload", help="list the GEMMs of a language model layer from its "
                                        "config.json; --compare: whole vs split array")
    w.add_argument("config", metavar="CONFIG",
                   help="a Hugging Face config.json, or a shipped model name "
                        "(gpt2, llama-3.2-1b, qwen2.5-0.5b, olmoe-1b-7b, mixtral-8x7b, "
                        "deepseek-v2-lite); a config it cannot count is refused")
    w.add_argument("--phase", choices=PHASES, default="decode",
                   help="prefill (--tokens per sequence) or decode (one token per "
                        "sequence at --context); default decode")
    w.add_argument("--batch", type=int_in(1, 1 << 16, "batch"), default=1, metavar="B",
                   help="sequences (default 1)")
    w.add_argument("--tokens", type=int_in(1, 1 << 20, "tokens"), default=None,
                   metavar="L", help=f"prefill: tokens per sequence (default "
                                     f"{DEFAULT_TOKENS})")
    w.add_argument("--context", type=int_in(1, 1 << 20, "context"), default=None,
                   metavar="T", help=f"decode: cached tokens attended to (default "
                                     f"{DEFAULT_CONTEXT})")
    w.add_argument("--stack-gqa", action="store_true",
                   help="stack the query heads sharing a K/V head into one attention GEMM "
                        "per sequence and K/V head (GQA configs; absorbed MLA: all heads)")
    w.add_argument("--mla", choices=MLA_FORMS, default=None,
                   help="multi-head latent attention (DeepSeek): count the naive form "
                        "(latents expanded to per-head keys and values) or the absorbed one "
                        "(up-projections folded into the query and output; attention on "
                        "the latents); default absorbed in decode, naive in prefill")
    w.add_argument("--compare", action="store_true",
                   help="cycles and utilization on the whole array (one GEMM after "
                        "another), on the split array (scheduler) and SCALE-Sim's formula")
    w.add_argument("--gating", action="store_true",
                   help="per tile of the split array, cycles clocked and gated by the "
                        "clock gates (SplitConfig clock_gate) in one layer, whole and split")
    w.add_argument("--energy", action="store_true",
                   help="decode: energy per token of one layer (and the model), whole vs "
                        "split, gated vs ungated, from a gate-level capture of one tile "
                        "(sim.studies.token_energy; a few minutes the first time, cached)")
    g = w.add_argument_group("array (with --compare, --gating, --energy or --rtl)")
    g.add_argument("--rows", type=int_in(1, 256, "rows"), default=64, metavar="R",
                   help="PE rows (default 64)")
    g.add_argument("--cols", type=int_in(1, 256, "cols"), default=64, metavar="C",
                   help="PE columns (default 64)")
    g.add_argument("--tile", type=int_in(1, 256, "tile"), default=16, metavar="T",
                   help="tile edge of the split array (default 16); must divide R and C")
    g.add_argument("--dataflow", choices=["ws", "os"], default="ws",
                   help="default ws")
    g.add_argument("--precision", choices=PRECISIONS, default="int4",
                   help="with --compare: every GEMM in this precision on an array fused "
                        "for it (hdl/fusion.py; W4A8 2, int8 4 digit steps per MAC)")
    g.add_argument("--fold-overlap", action="store_true",
                   help="overlapping folds (WS shadow weights, OS double-buffered PE)")
    add_mac_options(w)
    _add_rtl_options(w)
    w.add_argument("--json", metavar="FILE", help="write the list (and comparison) as JSON")
    w.add_argument("--md", metavar="FILE", help="write the tables as Markdown")
    w.add_argument("--plot", metavar="FILE.png", help="with --compare: cycles per GEMM")
    w.set_defaults(func=cmd_workload)


def _add_rtl_options(w):
    from sim.runner import SIMULATORS
    from sim.studies.workload_rtl import RTL_CONTEXT, RTL_MAX_CYCLES, RTL_TOKENS
    r = w.add_argument_group("RTL on the model's real shapes (--rtl)")
    r.add_argument("--rtl", action="store_true",
                   help="simulate the layer's smallest dense projection at full size (a "
                        "decode GEMV and a prefill), for MoE the router and one expert, and "
                        "one head's attention GEMMs, random operands, on the split array "
                        "(--rows/--cols/--tile/--dataflow): whole, then the scheduler's "
                        "split program; C against numpy, cycles against the model")
    r.add_argument("--rtl-tokens", type=int_in(1, 1 << 16, "rtl-tokens"),
                   default=RTL_TOKENS, metavar="L",
                   help=f"tokens of the RTL prefill (default {RTL_TOKENS})")
    r.add_argument("--rtl-context", type=int_in(1, 1 << 16, "rtl-context"),
                   default=RTL_CONTEXT, metavar="T",
                   help=f"keys of the RTL decode attention (default {RTL_CONTEXT})")
    r.add_argument("--rtl-max-cycles", type=int_in(0, 1 << 40, "rtl-max-cycles"),
                   default=RTL_MAX_CYCLES or 0, metavar="N",
                   help="a GEMM longer than N cycles on the whole array runs on its first "
                        "columns, for a quicker look (default 0: every GEMM at full size)")
    r.add_argument("--sim", choices=SIMULATORS, default=None,
                   help="simulator (default: verilator when present, else icarus)")
    r.add_argument("--path", choices=["auto", "native", "cocotb"], default="auto",
                   help="native: memory file played without Python per cycle; cocotb: "
                        "per-cycle Python (default auto: native)")
    r.add_argument("--model", choices=["gate", "twin"], default="twin",
                   help="twin (default): the array with the behavioural MAC, after a Yosys "
                        "proof that it equals the gate-level one; gate: the gate-level "
                        "array (slow at 64x64)")
    r.add_argument("--seed", type=int, default=0, help="seed of the operands (default 0)")
    r.add_argument("--from-memory", action="store_true",
                   help="run both programs on the split tile from its memories (WS, square "
                        "array of square tiles, 2..4 tiles a side; icarus, cocotb path, "
                        "gate-level array): operands written into the tiles' scratchpads, "
                        "each phase in rounds of one start; --model is not used)")


def _phase(args):
    from sim.models.workload import Phase
    if args.phase == "prefill":
        if args.context is not None:
            raise UsageError("--context: only for --phase decode (prefill attends to its "
                             "own --tokens)")
        return Phase("prefill", batch=args.batch, tokens=args.tokens or DEFAULT_TOKENS)
    if args.tokens is not None:
        raise UsageError("--tokens: only for --phase prefill (decode makes one token per "
                         "sequence; give --context)")
    return Phase("decode", batch=args.batch, context=args.context or DEFAULT_CONTEXT)


def cmd_workload(args):
    from sim.models.workload import (WorkloadError, load_config, model_shape, layer_groups,
                                     lm_head_gemms, mla_form, total_macs)
    from sim.studies.workload_report import gemm_table, model_summary, compare_markdown
    from sim.studies.tables import write_json
    from hdl.emit import write_atomic
    if args.plot and not args.compare:
        raise UsageError("--plot: needs --compare")
    if args.from_memory and not args.rtl:
        raise UsageError("--from-memory: needs --rtl")
    if args.rtl:
        _check_rtl_args(args)
    outs = [(getattr(args, k), f"--{k}") for k in ("json", "md", "plot") if getattr(args, k)]
    for path, option in outs:
        check_writable(path, option)
    try:
        cfg, name = load_config(args.config)
        model = model_shape(cfg, name=name)
        phase = _phase(args)
    except WorkloadError as e:
        raise UsageError(f"{args.config}: {e}") from None
    split = None
    if args.energy and phase.kind != "decode":
        raise UsageError("--energy: only for --phase decode (energy per generated token)")
    if args.precision != "int4" and (not args.compare or args.rtl or args.gating
                                     or args.energy):
        raise UsageError(f"--precision {args.precision}: only with --compare (cycle model; "
                         f"not with --rtl, --gating or --energy)")
    if args.compare or args.rtl or args.gating or args.energy:
        from hdl.split import SplitConfig
        split = SplitConfig(args.rows, args.cols, args.tile, mac_config(args),
                            fold_overlap=args.fold_overlap, dataflow=args.dataflow,
                            fusion="none" if args.precision == "int4" else args.precision)
        _check_precision(args.precision, split)
    if args.mla and not model.mla:
        raise UsageError(f"--mla: {args.config} has no multi-head latent attention (a "
                         f"DeepSeek-V2/V3 config has); drop --mla")
    groups = layer_groups(model, phase, stack_gqa=args.stack_gqa, mla=args.mla)
    head = lm_head_gemms(model, phase)
    lines = [f"{model_summary(model)}", f"phase: {phase.describe()}"]
    if model.mla:
        lines.append(f"attention: multi-head latent attention, {mla_form(phase, args.mla)} "
                     f"form (--mla naive|absorbed)")
    macs = []
    for g in groups:
        what = ("one layer" if g.part == "layer" else
                f"one {g.part} ({g.kind.describe()})")
        lines += ["", f"{what} ({g.layers} in the model):", gemm_table(g.gemms)]
        macs.append(f"{g.macs:,} per {g.part} (x{g.layers})")
    model_total = sum(g.layers * g.macs for g in groups) + total_macs(head)
    lines += ["", "LM head:", gemm_table(head), "",
              f"MACs: {', '.join(macs)}, {total_macs(head):,} LM head, {model_total:,} "
              f"the model"]
    shape = dict(model.__dict__, layer_kinds=[
        {"kind": g.kind.__dict__, "part": g.part, "layers": g.layers} for g in groups])
    data = {"model": name, "config": args.config, "phase": phase.__dict__,
            "shape": shape, "mla": mla_form(phase, args.mla) if model.mla else None,
            "gemms": [dict(x.__dict__, macs=x.macs, part=g.part, layers=g.layers)
                      for g in groups for x in g.gemms]
            + [dict(x.__dict__, macs=x.macs, part="lm_head") for x in head],
            "macs": {"model": model_total, "lm_head": total_macs(head),
                     **{g.part: g.macs for g in groups}}}
    if args.compare:
        from sim.studies.workload import compare_workload
        cmp = compare_workload(model, phase, split, stack_gqa=args.stack_gqa, mla=args.mla,
                               precision=args.precision)
        data["compare"] = cmp
        lines += ["", compare_markdown(cmp)]
        t = cmp["model"]
        prec = "" if args.precision == "int4" else f" in {args.precision}"
        lines.append(f"whole model{prec}: {t['whole_cycles']:,} cycles whole, "
                     f"{t['split_cycles']:,} split -> {t['speedup']:.2f}x fewer cycles split "
                     f"(SCALE-Sim on the whole array: {t['scalesim_cycles']:,})")
    if args.gating:
        from sim.studies.workload_gating import layer_gating, gating_markdown
        kinds = model.kinds()
        if len(kinds) == 1:
            data["gating"] = layer_gating(model, phase, split, stack_gqa=args.stack_gqa)
            lines += ["", gating_markdown(data["gating"], split)]
        else:                               # DeepSeek's dense and MoE layers: one table each
            data["gating"] = {}
            for kind, n in kinds:
                g = layer_gating(model, phase, split, stack_gqa=args.stack_gqa, kind=kind)
                data["gating"][kind.describe()] = g
                lines += ["", f"{kind.describe()} ({n} layers):", gating_markdown(g, split)]
    if args.energy:
        from sim.studies.token_energy import decode_token_energy, token_markdown
        e = decode_token_energy(model, split, context=phase.context, batch=phase.batch,
                                stack_gqa=args.stack_gqa)
        data["energy"] = e
        lines += ["", "### Energy per token, one decode layer (Nangate45, 1.1 V, unit delay)", "",
                  token_markdown([e])]
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)          # before an RTL run, which takes a while
    status = 0
    if args.rtl:
        status, rtl_lines, data["rtl"] = _run_rtl(model, split, args)
        rtl_text = "\n" + "\n".join(rtl_lines) + "\n"
        sys.stdout.write(rtl_text)
        text += rtl_text
    if args.json:
        write_json(args.json, data)
    if args.md:
        write_atomic(args.md, f"# {name}: GEMMs\n\n" + text)
    if args.plot:
        from sim.studies.workload_report import plot_compare
        plot_compare(data["compare"], args.plot,
                     "produced by: systolic workload " + " ".join(sys.argv[2:]))
    return status


def _check_precision(precision, split):
    """Exit 2 (one line) unless the whole array runs ``precision`` (WS: D rows)."""
    from sim.drivers.fusion import check_precision
    try:
        check_precision(precision, split.sub_config(split.subarrays("whole")[0]))
    except ValueError as e:
        raise UsageError(f"--precision: {e}") from None


def _check_rtl_args(args):
    if args.numerics not in ("int4", "uint4"):
        raise UsageError(f"--rtl: int4 or uint4 operands only, not --numerics "
                         f"{args.numerics} (FP4 GEMMs run with systolic gemm --numerics)")
    from .common import simulators
    args.sim = args.sim or simulators(None)[0]
    simulators([args.sim])


def _run_from_memory(model, split, args):
    """``(exit status, text lines, JSON row)``: both programs on the split tile from
    memory (:mod:`sim.studies.workload_memory`)."""
    from hdl.mac import ConfigError
    from sim.studies.workload_rtl import prepare_rtl_shapes
    from sim.studies.workload_memory import (memory_markdown, memory_tile_config,
                                             run_memory_shapes)
    import time
    if args.path == "native":
        raise UsageError("--from-memory: the cocotb path only (leave out --path native)")
    prep = prepare_rtl_shapes(
        model, split, simulator="icarus", path="cocotb", seed=args.seed,
        tokens=args.rtl_tokens, context=args.rtl_context, model_kind="gate",
        max_cycles=args.rtl_max_cycles or None)
    try:
        cfg = memory_tile_config(split, prep.batch.items)
    except (ConfigError, ValueError) as e:
        raise UsageError(f"--from-memory: {e}") from None
    print(f"RTL from memory: {len(prep.gemms)} GEMMs of {model.name} on the split tile "
          f"{cfg.slug}, icarus, whole then split", file=sys.stderr, flush=True)
    start = time.monotonic()
    try:
        row = run_memory_shapes(prep)
    except AssertionError as e:
        return 1, [f"RTL from memory: MISMATCH: {e}"], {"error": str(e)}
    row["seconds"] = round(time.monotonic() - start, 1)
    return 0, [f"RTL from memory ({row['seconds']:.1f} s):", "", memory_markdown(row), "",
               "every C equals numpy, every program's RTL cycles equal the model"], row


def _run_rtl(model, split, args):
    """``(exit status, text lines, JSON row)`` of the model's real shapes in RTL."""
    if getattr(args, "from_memory", False):
        return _run_from_memory(model, split, args)
    from sim.native.run import PathLimitError, check_limits, program_limits
    from sim.native.twin import TwinNotProven
    from sim.batch import run_batch
    from sim.studies.workload_rtl import check_rtl_shapes, prepare_rtl_shapes
    from sim.studies.workload_report import rtl_markdown
    import time
    try:
        prep = prepare_rtl_shapes(
            model, split, simulator=args.sim, path=args.path, seed=args.seed,
            tokens=args.rtl_tokens, context=args.rtl_context, model_kind=args.model,
            max_cycles=args.rtl_max_cycles or None)
        for name, program in zip(("whole", "split"), prep.batch.items):
            cycles, lanes, job = program_limits(program, split)
            check_limits(prep.path, cycles, lanes, f"the {name} program", job=job)
    except TwinNotProven as e:
        raise UsageError(f"--model twin: {e}") from None
    except PathLimitError as e:
        raise UsageError(f"--rtl: {e} (or lower --rtl-max-cycles)") from None
    print(f"RTL: {len(prep.gemms)} GEMMs of {model.name} on the {split.rows}x{split.cols} "
          f"split array ({split.grid[0]}x{split.grid[1]} tiles, "
          f"{split.dataflow.upper()}), {args.sim}, {prep.path} path, {args.model} model, "
          f"whole then split; the first run of a design builds it (minutes at 64x64)",
          file=sys.stderr, flush=True)
    start = time.monotonic()
    try:
        results = run_batch(prep.batch)
    except TwinNotProven as e:
        raise UsageError(f"--model twin: {e}") from None
    seconds = time.monotonic() - start
    try:
        row = check_rtl_shapes(prep, results, seconds)
    except AssertionError as e:
        return 1, [f"RTL on real shapes: MISMATCH: {e}"], {"error": str(e)}
    return 0, [f"RTL on real shapes ({seconds:.1f} s):", "", rtl_markdown(row), "",
               "every C equals numpy, every job's and program's RTL cycles equal the "
               "model"], row
