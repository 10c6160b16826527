"""``systolic workload CONFIG``: the GEMMs of a language model, and whole vs split.

    systolic workload llama-3.2-1b --phase decode --batch 16 --context 1024
    systolic workload path/to/config.json --phase prefill --tokens 512 --compare \\
        --rows 64 --cols 64 --tile 16 --json w.json --md w.md --plot w.png
"""
import sys

from .common import UsageError, int_in, add_mac_options, check_writable, mac_config

__all__ = ["register", "cmd_workload"]

DEFAULT_TOKENS = 512
DEFAULT_CONTEXT = 1024


def register(sub):
    """Add the ``workload`` subcommand to the subparsers ``sub``."""
    from sim.models.workload import PHASES
    w = sub.add_parser("workload", help="list the GEMMs of a language model layer from its "
                                        "config.json; --compare: whole vs split array")
    w.add_argument("config", metavar="CONFIG",
                   help="a Hugging Face config.json, or a shipped model name "
                        "(gpt2, llama-3.2-1b, qwen2.5-0.5b, olmoe-1b-7b, mixtral-8x7b)")
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
                        "per sequence and K/V head (GQA configs)")
    w.add_argument("--compare", action="store_true",
                   help="cycles and utilization on the whole array (one GEMM after "
                        "another), on the split array (scheduler) and SCALE-Sim's formula")
    g = w.add_argument_group("array (with --compare)")
    g.add_argument("--rows", type=int_in(1, 256, "rows"), default=64, metavar="R",
                   help="PE rows (default 64)")
    g.add_argument("--cols", type=int_in(1, 256, "cols"), default=64, metavar="C",
                   help="PE columns (default 64)")
    g.add_argument("--tile", type=int_in(1, 256, "tile"), default=16, metavar="T",
                   help="tile edge of the split array (default 16); must divide R and C")
    g.add_argument("--dataflow", choices=["ws", "os"], default="ws",
                   help="default ws")
    g.add_argument("--fold-overlap", action="store_true",
                   help="overlapping folds (WS shadow weights, OS double-buffered PE)")
    add_mac_options(w)
    w.add_argument("--json", metavar="FILE", help="write the list (and comparison) as JSON")
    w.add_argument("--md", metavar="FILE", help="write the tables as Markdown")
    w.add_argument("--plot", metavar="FILE.png", help="with --compare: cycles per GEMM")
    w.set_defaults(func=cmd_workload)


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
    from sim.models.workload import (WorkloadError, load_config, model_shape, layer_gemms,
                                     lm_head_gemms, total_macs)
    from sim.studies.workload_report import gemm_table, model_summary, compare_markdown
    from sim.studies.tables import write_json
    from hdl.emit import write_atomic
    if args.plot and not args.compare:
        raise UsageError("--plot: needs --compare")
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
    if args.compare:
        from hdl.split import SplitConfig
        split = SplitConfig(args.rows, args.cols, args.tile, mac_config(args),
                            fold_overlap=args.fold_overlap, dataflow=args.dataflow)
    layer = layer_gemms(model, phase, stack_gqa=args.stack_gqa)
    head = lm_head_gemms(model, phase)
    lines = [f"{model_summary(model)}", f"phase: {phase.describe()}", "",
             f"one layer ({model.layers} in the model):", gemm_table(layer), "",
             "LM head:", gemm_table(head), "",
             f"MACs: {total_macs(layer):,} per layer, {total_macs(head):,} LM head, "
             f"{model.layers * total_macs(layer) + total_macs(head):,} the model"]
    data = {"model": name, "config": args.config, "phase": phase.__dict__,
            "shape": model.__dict__,
            "gemms": [dict(g.__dict__, macs=g.macs, part="layer") for g in layer]
            + [dict(g.__dict__, macs=g.macs, part="lm_head") for g in head]}
    if split is not None:
        from sim.studies.workload import compare_workload
        cmp = compare_workload(model, phase, split, stack_gqa=args.stack_gqa)
        data["compare"] = cmp
        lines += ["", compare_markdown(cmp)]
        t = cmp["model"]
        lines.append(f"whole model: {t['whole_cycles']:,} cycles whole, "
                     f"{t['split_cycles']:,} split -> {t['speedup']:.2f}x fewer cycles split "
                     f"(SCALE-Sim on the whole array: {t['scalesim_cycles']:,})")
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if args.json:
        write_json(args.json, data)
    if args.md:
        write_atomic(args.md, f"# {name}: GEMMs\n\n" + text)
    if args.plot:
        from sim.studies.workload_report import plot_compare
        plot_compare(data["compare"], args.plot,
                     "produced by: systolic workload " + " ".join(sys.argv[2:]))
    return 0
