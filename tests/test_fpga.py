"""iCE40 place and route (hdl.flows.fpga) and the hierarchical breakdown (hdl.flows.synth)."""
import pytest

from hdl.array import array_verilog
from hdl.emit import to_verilog
from hdl.flows.fpga import FpgaFitError, ice40_fmax, top_ports, wrap_for_fpga
from hdl.mac import MacConfig
from hdl.flows.breakdown import BREAKDOWN_CATEGORIES, synth_breakdown
from hdl.flows.synth import synthesize


def test_mac_fmax_up5k():
    verilog = to_verilog(MacConfig(multiplier="behavioral").build(), name="mac")
    res = ice40_fmax(verilog, "mac", "up5k", cache=False)
    assert 10 < res["fmax_mhz"] < 300
    assert res["dut_lut4"] == 80 and res["dut_carry"] == 13 and res["dut_dff"] == 16
    assert res["lcs_available"] == 5280 and 0 < res["utilization"] < 0.1
    assert res["luts"] >= res["dut_lut4"] - 5
    assert "nextpnr-ice40 0.11.1" in res["tool"]


def test_too_big_design_is_fit_error():
    # A 750-stage, 8-bit shift register: 6000 flops cannot fit the UP5K's 5280 logic
    # cells (a generate loop: one 6000-bit concatenation exhausts Yosys' wasm stack).
    verilog = """module big(input clk, input rst, input [7:0] d, output [7:0] q);
  genvar i;
  wire [7:0] s [0:750];
  assign s[0] = d;
  generate for (i = 0; i < 750; i = i + 1) begin : g
    reg [7:0] r;
    always @(posedge clk) r <= s[i];
    assign s[i+1] = r;
  end endgenerate
  assign q = s[750];
endmodule
"""
    with pytest.raises(FpgaFitError) as info:
        ice40_fmax(verilog, "big", "up5k", cache=False)
    assert "does not fit" in str(info.value) and "\n" not in str(info.value)


def test_top_ports_of_hand_written_modules():
    """Declaration order, widths of [hi:lo] and [lo:hi], one entry per port (a non-ANSI
    port is named in the header and declared again in the body), other modules ignored."""
    non_ansi = """module other(input [9:0] z); endmodule
module top(b, clk, y, a);
  input [3:0] a;
  input clk;
  input [0:7] b;
  output [15:0] y;
  wire [31:0] internal;
  assign y = {a, b, a};
endmodule
"""
    assert top_ports(non_ansi, "top") == [("input", "a", 4), ("input", "clk", 1),
                                          ("input", "b", 8), ("output", "y", 16)]
    ansi = "module t(input wire clk, input wire [2:0] x,\n  output reg [5:1] q);\nendmodule\n"
    assert top_ports(ansi, "t") == [("input", "clk", 1), ("input", "x", 3),
                                    ("output", "q", 5)]
    with pytest.raises(ValueError, match="not found"):
        top_ports(ansi, "missing")


def test_wrapper_ports():
    verilog = to_verilog(MacConfig().build(), name="mac")
    ports = top_ports(verilog, "mac")
    # Amaranth chooses the declaration order; the set of ports is the MAC contract
    assert len(ports) == 5 and {n: (d, w) for d, n, w in ports} == {
        "a": ("input", 4), "b": ("input", 4), "clk": ("input", 1), "rst": ("input", 1),
        "acc": ("output", 16)}
    wrap = wrap_for_fpga(verilog, "mac")
    assert "reg [7:0] sh;" in wrap and "wire [15:0] o;" in wrap


@pytest.mark.parametrize("design", ["mac_p2", "array_ws"])
def test_breakdown_sums_to_total(design):
    if design == "mac_p2":
        verilog, top = to_verilog(MacConfig(pipeline=2).build(), name="mac"), "mac"
    else:
        verilog, top = array_verilog(2, 2, "ws", MacConfig(pipeline=1)), "systolic_array"
    res = synth_breakdown(verilog, top)
    cats = res["categories"]
    assert set(cats) == set(BREAKDOWN_CATEGORIES)
    assert sum(c["transistors"] for c in cats.values()) == res["total_transistors"]
    assert cats["pipeline_registers"]["flops"] > 0 and cats["mac_datapath"]["flops"] > 0
    if top == "mac":
        # One module: the hierarchical flow is the flat flow.
        assert res["total_transistors"] == synthesize(verilog, top="mac",
                                                      ice40=False).transistors
    else:
        assert res["modules"]["pe"]["instances"] == 4
        assert cats["operand_registers"]["flops"] > 0


def test_breakdown_counts_split_muxes():
    split = pytest.importorskip("hdl.split")
    mac = MacConfig()
    res = synth_breakdown(split.split_verilog(4, 4, (2, 2), mac), "splittable_array")
    plain = synth_breakdown(array_verilog(4, 4, "ws", mac), "systolic_array")
    extra = res["total_transistors"] - plain["total_transistors"]
    assert extra > 0 and res["categories"]["split_config"]["transistors"] == extra
    assert plain["categories"]["split_config"]["transistors"] == 0
