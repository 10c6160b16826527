"""Energy per token of one decode layer, whole against split, gated against ungated.

A gate-level simulation of a 64x64 array over the millions of cycles of a decode layer is
out of reach, so the energy is put together from two measured pieces:

1. :func:`tile_energy`: the gate-level energy flow (:func:`hdl.flows.energy.design_energy`,
   Nangate45, unit delay by default) on ONE tile, a plain ``TR x TC`` array of the split
   array's dataflow and MAC, in one capture of three segments after the reset:

   * **busy**: a decode GEMV ``1 x K x N`` (uniform random operands) played by its own
     schedule (:func:`sim.studies.energy_study.array_stimulus`); ``E_busy`` is the mean
     energy per cycle over the schedule;
   * **idle, clocked**: ``idle`` cycles with every input 0 and every flop clocked (the
     state the GEMV left: weights held); ``E_idle`` is the mean over its last
     ``idle - settle`` cycles (the first ``settle`` let the last results drain);
   * **gated**: ``gated`` cycles with every flop's clock disabled (an ideal gate through
     ``clock_enable``); ``E_gated`` is the mean (leakage, and nothing else switches).

   Captures are cached like every energy capture (``build/cache/energy``).

2. :func:`program_energy`: the per-tile counts of :func:`sim.models.gating.tile_clock_cycles`
   on a program of the split array: per tile ``busy`` cycles (a job of the tile runs),
   ``clocked`` cycles (busy plus the gate's hold after each job) and ``gated`` cycles::

       ungated = sum_tiles busy * E_busy + (cycles - busy) * E_idle
       gated   = sum_tiles busy * E_busy + (clocked - busy) * E_idle + gated * E_gated
                 + cycles * E_icg

   (ungated, every tile is clocked in every cycle of the program). ``E_icg``
   (:func:`icg_cycle_pj`) is an upper bound of one ``CLKGATE_X1``'s own energy per cycle,
   from the Liberty file: its clock pin is charged by the root clock in every cycle,
   open or not (about 0.03 pJ in Nangate45, 1.6% of a gated 16x16 tile's leakage).

:func:`decode_token_energy` applies it to the whole and split programs of one decoder
layer (:func:`sim.studies.workload_gating.layer_programs`) and divides by the tokens of
the phase (its batch). The whole array is counted as its ``GR x GC`` tiles, each priced
as the same ``TR x TC`` block: the wires and muxes between tiles (the split array's port
logic; +0.2% on an 8x8 split array of 4x4 tiles in whole mode, docs/energy.md) are not
in these numbers, nor a clock tree (the clock net is ideal, as in the energy flow). A
busy tile costs ``E_busy`` per cycle whatever the GEMV it runs (the measured one stands
for all the layer's GEMMs; 1 x 256 x 64 instead of 1 x 128 x 64 changes it by 0.4%).
"""
from dataclasses import asdict, dataclass

import numpy as np

from hdl.array import ArrayConfig
from hdl.split import SplitConfig

__all__ = ["TileEnergy", "tile_energy", "icg_cycle_pj", "program_energy", "decode_token_energy",
           "token_markdown", "VARIANTS", "PE_VARIANTS", "GEMV"]

#: The four energies of :func:`decode_token_energy`, in table order.
VARIANTS = ("whole_ungated", "whole_gated", "split_ungated", "split_gated")
#: With clock gates in every PE (:mod:`hdl.pe_gate`) as well as per tile (WS arrays).
PE_VARIANTS = ("whole_pe_gated", "split_pe_gated")
#: Default decode GEMV of the tile capture: ``(K, N)`` of ``1 x K x N``.
GEMV = (128, 64)


@dataclass(frozen=True)
class TileEnergy:
    """Per tile-cycle energies (pJ) of one ``rows x cols`` tile (:func:`tile_energy`)."""
    rows: int
    cols: int
    busy_pj: float
    idle_pj: float
    gated_pj: float
    gemv: tuple = GEMV
    timing: str = "unit"
    busy_cycles: int = 0
    idle_cycles: int = 0
    gated_cycles: int = 0
    leakage_pj: float = 0.0
    icg_pj: float = 0.0
    capture_seconds: float = 0.0
    cached: bool = False

    def to_json(self):
        d = asdict(self)
        d["gemv"] = list(self.gemv)
        return d


def _tile_config(config):
    if isinstance(config, ArrayConfig):
        return config
    if not isinstance(config, SplitConfig):
        raise TypeError(f"expected an ArrayConfig or SplitConfig, got {type(config).__name__}")
    tr, tc, _, _ = config.grid
    return ArrayConfig(tr, tc, config.dataflow, config.mac, fold_overlap=config.fold_overlap,
                       double_buffer=config.double_buffer, pe_gate=config.pe_gate)


def icg_cycle_pj(liberty=None, *, cell="CLKGATE_X1", period_ns=1.0, cache=True):
    """Upper bound (pJ) of one integrated clock gate's own energy per clock cycle: its
    clock pin's capacitance x V^2 (charged and discharged by the root clock), plus the
    largest rise + fall internal energy of any ``when`` arc of the clock pin and of the
    gated clock output (each table's largest entry), plus leakage x ``period_ns``. The
    enable pin toggles only at a window's edge and is left out. Units as the energy flow
    assumes them (fF, V, fJ internal energy, nW leakage)."""
    from pathlib import Path

    from hdl.flows.liberty import (LibertyError, _floats, _parse_groups, _tokens,
                                   nangate45_liberty)
    path = Path(liberty) if liberty else nangate45_liberty(cache)
    lib = _parse_groups(_tokens(path.read_text(errors="replace")), path.name)
    cells = [g for g in lib[3] if g[0] == "cell" and g[1] == [cell]]
    if not cells:
        raise LibertyError(f"{path.name}: no cell {cell}")
    volt = float(lib[2].get("nom_voltage", "1.1"))
    pins = {g[1][0]: g for g in cells[0][3] if g[0] == "pin"}

    def arcs(pin):
        return [sum(max(x for v in t[2]["values"] for x in _floats(v)) for t in g[3]
                    if t[0] in ("rise_power", "fall_power"))
                for g in pins[pin][3] if g[0] == "internal_power"] or [0.0]
    clock = [p for p, g in pins.items() if g[2].get("clock_gate_clock_pin") == "true"]
    out = [p for p, g in pins.items() if g[2].get("clock_gate_out_pin") == "true"
           or g[2].get("direction") == "output"]
    if not clock:
        raise LibertyError(f"{path.name}: {cell} has no clock_gate_clock_pin")
    ck = clock[0]
    fj = (float(pins[ck][2].get("capacitance", 0.0)) * volt ** 2 + max(arcs(ck))
          + sum(max(arcs(p)) for p in out)
          + float(cells[0][2].get("cell_leakage_power", 0.0)) * period_ns * 1e-3)
    return fj * 1e-3                                  # fJ -> pJ


def tile_energy(config, *, gemv=GEMV, idle=48, settle=16, gated=32, timing="unit",
                seed=0, cache=True, progress=None):
    """:class:`TileEnergy` of the tile of ``config`` (a :class:`~hdl.split.SplitConfig`:
    its ``TR x TC`` tile as a plain array; or an :class:`~hdl.array.ArrayConfig` itself),
    measured in one capture of the three segments of the module docstring. ``gemv``:
    ``(K, N)`` of the busy segment's ``1 x K x N`` GEMV."""
    from hdl.array import TOPLEVEL
    from hdl.flows.activity import GateSim
    from hdl.flows.energy import design_energy
    from hdl.flows.gatemap import mapped_netlist
    from hdl.flows.liberty import nangate45_liberty
    from hdl.flows.libpower import library_power
    from sim.studies.energy_study import array_stimulus, operands
    tile = _tile_config(config)
    K, N = gemv
    if not (isinstance(K, int) and isinstance(N, int) and K >= 1 and N >= 1):
        raise ValueError(f"gemv: expected (K, N) positive ints, got {gemv!r}")
    if not 0 <= settle < idle or gated < 1:
        raise ValueError(f"need 0 <= settle < idle and gated >= 1, got settle={settle}, "
                         f"idle={idle}, gated={gated}")
    A, B = operands("uniform", 1, K, N, tile.mac, seed=seed)
    ports, T_busy, warmup = array_stimulus(tile, A, B)
    tail = idle + gated
    T = T_busy + tail
    ports = {name: np.concatenate([b, np.zeros((tail, b.shape[1]), np.uint8)])
             for name, b in ports.items()}
    verilog = tile.verilog()
    liberty = nangate45_liberty(cache)
    sim = GateSim(mapped_netlist(verilog, TOPLEVEL, liberty, cache=cache)["netlist"],
                  TOPLEVEL, library_power(liberty))
    enable = np.ones((T, 1), bool)
    enable[T_busy + idle:] = False
    rep = design_energy(verilog, TOPLEVEL, ports, cycles=T, warmup=warmup, timing=timing,
                        clock_enable=(np.zeros(len(sim.flops), np.int64), enable),
                        cache=cache, progress=progress)
    e = rep.per_cycle_pj                   # index t - warmup
    busy = e[:T_busy - warmup]
    idle_e = e[T_busy - warmup + settle:T_busy - warmup + idle]
    gated_e = e[T_busy - warmup + idle:]
    return TileEnergy(tile.rows, tile.cols, float(busy.mean()), float(idle_e.mean()),
                      float(gated_e.mean()), (K, N), rep.timing, len(busy), len(idle_e),
                      len(gated_e), rep.components_pj["leakage"] / rep.cycles,
                      icg_cycle_pj(liberty, cache=cache), round(rep.capture_seconds, 1),
                      bool(rep.cached))


def program_energy(program, config, tile, pe_tile=None):
    """``{"cycles", "tiles", "busy", "idle_clocked", "gated", "ungated_pj", "gated_pj"}``
    of ``program`` (shapes or jobs of :func:`sim.models.program.program_schedule`) on
    ``config`` with the per-tile-cycle energies ``tile`` (:class:`TileEnergy`); the
    counts are tile-cycles summed over the tiles (formulas in the module docstring).
    ``pe_tile``: the energies of the same tile with clock gates in every PE
    (:mod:`hdl.pe_gate`); then also ``"pe_gated_pj"``: tile gates and PE gates, the
    ``gated_pj`` formula with ``pe_tile``'s energies."""
    from sim.models.gating import tile_clock_cycles
    tc = tile_clock_cycles(program, config)
    busy = int(tc.busy.sum())
    clocked = int(tc.clocked.sum())
    gated = int(tc.gated.sum())
    total = tc.cycles * len(tc.clocked)
    ungated = busy * tile.busy_pj + (total - busy) * tile.idle_pj
    gated_pj = (busy * tile.busy_pj + (clocked - busy) * tile.idle_pj + gated * tile.gated_pj
                + total * tile.icg_pj)
    out = {"cycles": tc.cycles, "tiles": len(tc.clocked), "busy": busy,
           "idle_clocked": clocked - busy, "gated": gated,
           "ungated_pj": ungated, "gated_pj": gated_pj}
    if pe_tile is not None:
        out["pe_gated_pj"] = (busy * pe_tile.busy_pj + (clocked - busy) * pe_tile.idle_pj
                              + gated * pe_tile.gated_pj + total * tile.icg_pj)
    return out


def decode_token_energy(model, config, *, context=512, batch=1, tile=None, pe_tile=None,
                        stack_gqa=False, **tile_options):
    """Energy per token of one decode layer of ``model`` (:class:`~sim.models.workload.
    ModelShape`) at ``context`` cached tokens and ``batch`` sequences on ``config`` (a
    :class:`~hdl.split.SplitConfig`): ``{"per_layer_pj": {variant: pJ per token},
    "per_model_pj": {...} (x the model's layers; LM head and embeddings not counted),
    "programs": {"whole"|"split": program_energy(...)}, "kinds": [{"kind", "layers",
    "programs"}], "tile": TileEnergy.to_json(), "ratios": {...}}``. A model of several
    kinds of layer (DeepSeek's dense first layers) is counted kind by kind; then
    ``per_layer_pj`` and ``programs`` are of the mean layer (weighted by layers).
    ``tile``: a measured :class:`TileEnergy` (default: measure it with
    ``tile_options`` passed to :func:`tile_energy`). WS arrays also get the variants of
    :data:`PE_VARIANTS` (clock gates in every PE as well as per tile): ``pe_tile``, the
    energies of the tile with PE gates (default: measured like ``tile``); ``"pe_tile"``
    and the ratio ``split_pe_gated_over_split_ungated`` join the result."""
    from sim.models.workload import Phase
    from sim.studies.workload_gating import layer_programs
    if not isinstance(config, SplitConfig):
        raise TypeError(f"expected a SplitConfig, got {type(config).__name__}")
    from dataclasses import replace
    plain = replace(config, pe_gate=False)
    if tile is None:
        tile = tile_energy(plain, **tile_options)
    if pe_tile is None and config.dataflow == "ws":
        pe_tile = tile_energy(replace(config, pe_gate=True), **tile_options)
    tr, tc, _, _ = config.grid
    for t in (tile, pe_tile):
        if t is not None and (t.rows, t.cols) != (tr, tc):
            raise ValueError(f"tile energies of a {t.rows}x{t.cols} tile, but the array "
                             f"has {tr}x{tc} tiles")
    phase = Phase("decode", batch=batch, context=context)
    kinds = model.kinds()
    layers = sum(n for _, n in kinds)
    per_kind, programs = [], {}
    for kind, n in kinds:
        progs = {name: program_energy(p, plain, tile, pe_tile) for name, p in
                 layer_programs(model, phase, plain, stack_gqa=stack_gqa, kind=kind).items()}
        per_kind.append({"kind": kind.describe(), "layers": n, "programs": progs})
        for name, p in progs.items():         # the mean layer: weighted by layers
            acc = programs.setdefault(name, dict.fromkeys(p, 0.0))
            for k, v in p.items():
                acc[k] += v * n / layers
    per_layer = {}
    for name, p in programs.items():
        per_layer[f"{name}_ungated"] = p["ungated_pj"] / batch
        per_layer[f"{name}_gated"] = p["gated_pj"] / batch
        if pe_tile is not None:
            per_layer[f"{name}_pe_gated"] = p["pe_gated_pj"] / batch
    variants = VARIANTS + (PE_VARIANTS if pe_tile is not None else ())
    per_layer = {v: per_layer[v] for v in variants}
    base = per_layer["whole_ungated"]
    ratios = {v: per_layer[v] / base for v in variants}
    ratios["split_gated_over_split_ungated"] = (per_layer["split_gated"]
                                                / per_layer["split_ungated"])
    if pe_tile is not None:
        ratios["split_pe_gated_over_split_ungated"] = (per_layer["split_pe_gated"]
                                                       / per_layer["split_ungated"])
    return {"model": model.name, "context": context, "batch": batch, "layers": layers,
            "array": [config.rows, config.cols], "tile_edge": [tr, tc],
            "per_layer_pj": per_layer,
            "per_model_pj": {v: e * layers for v, e in per_layer.items()},
            "ratios": ratios, "programs": programs, "kinds": per_kind,
            "tile": tile.to_json(), "pe_tile": pe_tile.to_json() if pe_tile else None}


def token_markdown(results):
    """A table of :func:`decode_token_energy` results (one row per model); the PE-gated
    columns appear when every result has them (WS arrays)."""
    from sim.studies.tables import markdown_table
    pe = bool(results) and all(r.get("pe_tile") for r in results)
    variants = VARIANTS + (PE_VARIANTS if pe else ())
    best = "split_pe_gated" if pe else "split_gated"
    rows = []
    for r in results:
        pl, pm, q = r["per_layer_pj"], r["per_model_pj"], r["ratios"]
        sp = r["programs"]["split"]
        gated_share = sp["gated"] / max(1, sp["cycles"] * sp["tiles"])
        rows.append([r["model"]] + [f"{pl[v] / 1e6:,.1f}" for v in variants]
                    + [f"{pm['whole_ungated'] / 1e9:,.2f}", f"{pm[best] / 1e9:,.2f}",
                       f"{q['split_gated']:.3f}", f"{q['split_gated_over_split_ungated']:.3f}"]
                    + ([f"{q['split_pe_gated_over_split_ungated']:.3f}",
                        f"{q['split_pe_gated']:.3f}"] if pe else [])
                    + [f"{100 * gated_share:.1f}%"])
    head = ""
    for key, what in (("tile", ""), ("pe_tile", " with clock gates in every PE")):
        t = results[0].get(key) if results else None
        if t:
            head += (f"Tile {t['rows']}x{t['cols']}{what} ({t['timing']} delay, decode GEMV 1 x "
                     f"{t['gemv'][0]} x {t['gemv'][1]}): E_busy {t['busy_pj']:.2f} pJ, "
                     f"E_idle (clocked) {t['idle_pj']:.2f} pJ, E_gated {t['gated_pj']:.4f} "
                     f"pJ per tile-cycle (leakage {t['leakage_pj']:.4f}); tile clock gate <= "
                     f"{t['icg_pj']:.4f} pJ per tile-cycle.\n\n")
    pe_head = (["whole PE-gated", "split PE-gated"] if pe else [])
    return head + markdown_table(
        ["model", "whole ungated uJ/layer", "whole gated", "split ungated", "split gated",
         *pe_head, "whole ungated mJ/model",
         f"{'split PE-gated' if pe else 'split gated'} mJ/model",
         "split gated / whole ungated", "split gated / split ungated",
         *(["split PE-gated / split ungated", "split PE-gated / whole ungated"] if pe
           else []), "split tile-cycles gated"], rows)
