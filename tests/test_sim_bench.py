"""The sim bench's bookkeeping (no simulation here: its rows are measurements): one part
run alone keeps the other part of an earlier sim.json, and the Markdown says what ran."""
import json

import pytest

import sim.studies.sim_bench as sb


def test_parts_merge_and_failed_flag_sets_are_reported(tmp_path, monkeypatch):
    row = {"size": 8, "path": "native", "simulator": "icarus", "model": "twin",
           "gemm": "8x300x8", "cycles": 314, "model_cycles": 314, "simulated_cycles": 320,
           "checked": True, "build_seconds": 1.0, "build_cpu_seconds": 0.5,
           "cpu_seconds": 0.2, "wall_seconds": 0.3, "cycles_per_s": 1600,
           "wall_cycles_per_s": 1067, "run_seconds": 2.0, "twin_proof": None}
    (tmp_path / "sim.json").write_text(json.dumps(
        {"parts": {"rows": {"command": "rows-cmd", "load_average": "1 2 3"}},
         "rows": [row], "flags": [], "skipped": []}))
    flags = [{"size": 16, "model": "twin", "opt_fast": "-Os", "verilator": "-O3",
              "chosen": True, "build_seconds": 9.0, "build_cpu_seconds": 8.0,
              "bare_cycles_per_s": 123456, "load_average": "0.5 0.5 0.5"},
             {"size": 16, "model": "twin", "opt_fast": "-O0", "verilator": "-O3",
              "chosen": False, "load_average": None, "error": "SimulationError: boom"}]
    monkeypatch.setattr(sb, "flag_rows", lambda progress=False: flags)
    data = sb.run_sim_bench(tmp_path, command="flags-cmd", part="flags", progress=False)
    assert data["rows"] == [row] and data["flags"] == flags
    assert data["parts"]["rows"]["command"] == "rows-cmd"
    assert data["parts"]["flags"]["command"] == "flags-cmd"
    md = (tmp_path / "sim.md").read_text()
    assert "`rows-cmd`" in md and "`flags-cmd`" in md and "123,456" in md
    assert "failed: SimulationError: boom" in md and "1,600" in md
    with pytest.raises(ValueError, match="unknown part 'x'"):
        sb.run_sim_bench(tmp_path, command="c", part="x")


def test_resume_keeps_measured_rows_and_reruns_failed_ones(tmp_path, monkeypatch):
    kept = {"size": 8, "path": "native", "simulator": "icarus", "model": "twin",
            "gemm": "8x300x8", "cycles": 314, "checked": True, "build_seconds": 1.0,
            "cycles_per_s": 1600, "wall_cycles_per_s": 1067}
    failed = {"size": 8, "path": "native", "simulator": "icarus", "model": "gate",
              "error": "SimulationError: boom"}
    (tmp_path / "sim.json").write_text(json.dumps({"rows": [kept, failed], "flags": []}))
    ran = []

    def fake(*key):
        ran.append(key)
        return {**kept, **dict(zip(("size", "path", "simulator", "model"), key))}
    monkeypatch.setattr(sb, "_row", fake)
    data = sb.run_sim_bench(tmp_path, command="c", sizes=(8,), part="rows", resume=True,
                            progress=False)
    assert (8, "native", "icarus", "twin") not in ran
    assert (8, "native", "icarus", "gate") in ran and len(ran) == len(sb.combos((8,))) - 1
    assert len(data["rows"]) == len(sb.combos((8,))) and not data["pending"]
    assert not any("error" in r for r in data["rows"])
