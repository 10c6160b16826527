"""Real-shape GEMMs of a (tiny) model in RTL, whole and split: C equals numpy, every
job's and program's cycles equal the cycle model (the bench runs the shipped models)."""
import json

import pytest

import sim.studies.workload as workload
import sim.studies.workload_rtl as workload_rtl
from hdl.split import SplitConfig
from sim.models.workload import model_shape
from sim.runner import available_simulators
from sim.studies.workload_rtl import rtl_gemms, run_rtl_shapes

TINY = {"model_type": "llama", "hidden_act": "silu", "hidden_size": 16,
        "intermediate_size": 24, "num_attention_heads": 2, "num_key_value_heads": 1,
        "num_hidden_layers": 2, "vocab_size": 20}


def test_rtl_shapes_by_hand():
    """The K projection (8 wide: one K/V head of 8), one head's scores and values."""
    m = model_shape(TINY, name="tiny")
    assert [g.shape for g in rtl_gemms(m, tokens=5, context=12)] == [
        (1, 16, 8), (1, 8, 12), (1, 12, 8), (5, 16, 8), (5, 8, 5), (5, 5, 8)]
    moe = model_shape(dict(TINY, num_experts=4, num_experts_per_tok=2), name="moe")
    gemms = rtl_gemms(moe, tokens=5, context=12)
    # the K projection at full size (not the router, which is smaller), the router (4
    # experts), one expert's GEMM with its share of the tokens: 1 x 2 / 4 -> 1,
    # 5 x 2 / 4 -> 3, then one head's attention
    assert [(g.name, g.shape) for g in gemms] == [
        ("decode k_proj (full size)", (1, 16, 8)), ("decode router (full size)", (1, 16, 4)),
        ("decode expert_gate (one expert)", (1, 16, 24)),
        ("decode scores (head)", (1, 8, 12)), ("decode values (head)", (1, 12, 8)),
        ("prefill k_proj (full size)", (5, 16, 8)), ("prefill router (full size)", (5, 16, 4)),
        ("prefill expert_gate (one expert)", (3, 16, 24)),
        ("prefill scores (head)", (5, 8, 5)), ("prefill values (head)", (5, 5, 8))]


def test_long_gemms_keep_their_first_columns():
    """Over the cycle budget: the largest multiple of the array's columns that fits."""
    moe = model_shape(dict(TINY, num_experts=4, num_experts_per_tok=2), name="moe")
    config = SplitConfig(4, 4, 2)
    full = rtl_gemms(moe, tokens=5, context=12)
    cut = rtl_gemms(moe, tokens=5, context=12, config=config, max_cycles=60)
    for f, c in zip(full, cut):
        assert (c.M, c.K) == (f.M, f.K)
        fits = workload.whole_cycles([f], config) <= 60
        assert (c.N, c.note) == (f.N, "") if fits else (
            c.N % 4 == 0 and c.note == f"columns 0..{c.N - 1} of {f.N}")
        assert workload.whole_cycles([c], config) <= 60
    assert [c.N for c in cut][:4] == [4, 4, 4, 8]
    assert rtl_gemms(moe, tokens=5, context=12, config=config, max_cycles=None) == full


@pytest.mark.parametrize("path, cut, kind", [("cocotb", False, "gate"),
                                             ("native", True, "gate"),
                                             ("cocotb", False, "twin")])
def test_tiny_model_in_rtl_whole_and_split(monkeypatch, path, cut, kind):
    """Icarus on both paths; cut: the scheduler's column/row blocks (plan_jobs off), C
    assembled from them; the twin on the cocotb path too, its proof cited."""
    if "icarus" not in available_simulators():
        pytest.skip("icarus is not available here")
    if cut:
        monkeypatch.setattr(workload, "PLAN_JOBS_LIMIT", 0)
    m = model_shape(TINY, name="tiny")
    r = run_rtl_shapes(m, SplitConfig(8, 8, 4), simulator="icarus", path=path,
                       model_kind=kind, tokens=5, context=12, seed=3)
    assert r["path"] == path and r["c_equal"] and r["cycles_equal"]
    assert r["model_kind"] == kind and r["mac"] == SplitConfig(8, 8, 4).mac.slug
    assert ("proven equal" in r["proof"]) == (kind == "twin")
    assert r["whole"]["rtl_cycles"] == sum(g["whole_model_cycles"] for g in r["gemms"])
    assert r["split"]["rtl_cycles"] < r["whole"]["rtl_cycles"]
    if cut:
        assert r["split"]["jobs"] > len(r["gemms"]) and "plan_jobs" not in r["split"]["plan"]


def test_rtl_catches_a_wrong_block(monkeypatch):
    """A block of C placed at the wrong columns must be reported, not hidden."""
    if "icarus" not in available_simulators():
        pytest.skip("icarus is not available here")
    monkeypatch.setattr(workload, "PLAN_JOBS_LIMIT", 0)
    real = workload.schedule_stage

    def shifted(gemms, config):
        plan = real(gemms, config)
        plan.tags = [[[(g, i, m0, n0 + 1 if n0 else n0) for g, i, m0, n0 in sub]
                      for sub in phase] for phase in plan.tags]
        return plan
    monkeypatch.setattr(workload_rtl, "schedule_stage", shifted)
    m = model_shape(TINY, name="tiny")
    with pytest.raises(AssertionError, match="split: .* C differs from numpy"):
        run_rtl_shapes(m, SplitConfig(8, 8, 4), simulator="icarus", path="native",
                       model_kind="gate", tokens=5, context=12, seed=3)


def test_models_fan_out_through_the_execution_layer():
    """The bench's RTL part (:func:`run_rtl_models`): every model's run sent to the
    executor at once gives the rows the same runs give one at a time here."""
    from sim.execute import LocalExecutor
    from sim.studies.workload_rtl import run_rtl_models
    if "icarus" not in available_simulators():
        pytest.skip("icarus is not available here")
    models = [model_shape(TINY, name="tiny"),
              model_shape(dict(TINY, num_experts=4, num_experts_per_tok=2), name="moe")]
    options = dict(simulator="icarus", path="native", model_kind="gate", tokens=5,
                   context=12, seed=3)
    config = SplitConfig(8, 8, 4)
    with LocalExecutor(workers=2) as pool:
        rows = run_rtl_models(models, config, executor=pool, **options)
    here = [run_rtl_shapes(m, config, **options) for m in models]
    assert [r["model"] for r in rows] == ["tiny", "moe"]
    for r, h in zip(rows, here):
        assert r["c_equal"] and r["cycles_equal"]
        assert {k: v for k, v in r.items() if k != "seconds"} == \
            {k: v for k, v in h.items() if k != "seconds"}


def _cli(argv, capsys):
    from sim.cli import main
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_rtl_on_a_config(tmp_path, capsys):
    """`systolic workload CONFIG --rtl`: the real shapes of any config in RTL, checked."""
    if "icarus" not in available_simulators():
        pytest.skip("icarus is not available here")
    cfg = tmp_path / "moe.json"
    cfg.write_text(json.dumps(dict(TINY, num_local_experts=4, num_experts_per_tok=2)))
    out, md = tmp_path / "w.json", tmp_path / "w.md"
    code, text, err = _cli(["workload", cfg, "--rtl", "--rows", "8", "--cols", "8",
                            "--tile", "4", "--sim", "icarus", "--model", "gate",
                            "--rtl-tokens", "5", "--rtl-context", "12", "--seed", "4",
                            "--json", out, "--md", md], capsys)
    assert code == 0, err
    row = json.loads(out.read_text())["rtl"]
    assert row["c_equal"] and row["cycles_equal"] and row["path"] == "native"
    assert [g["gemm"] for g in row["gemms"]][:3] == [
        "decode k_proj (full size)", "decode router (full size)",
        "decode expert_gate (one expert)"]
    assert row["whole"]["rtl_cycles"] == sum(g["whole_model_cycles"] for g in row["gemms"])
    assert "every C equals numpy" in text and "prefill expert_gate" in text
    # the Markdown file has what stdout shows: the GEMM list, then the RTL run
    assert md.read_text().endswith(text) and "one layer" in text


def test_cli_rtl_over_the_path_limit(tmp_path, capsys, monkeypatch):
    """A run the native path cannot hold: one line naming the limit, exit 2, no file."""
    import sim.native.run as native_run
    if "icarus" not in available_simulators():
        pytest.skip("icarus is not available here")
    monkeypatch.setattr(native_run, "NATIVE_MAX_LANE_BYTES", 64)
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(TINY))
    out = tmp_path / "w.json"
    code, _, err = _cli(["workload", cfg, "--rtl", "--rows", "8", "--cols", "8", "--tile",
                         "4", "--sim", "icarus", "--model", "gate", "--path", "native",
                         "--json", out], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and not out.exists()
    assert len(lines) == 1 and lines[0].startswith("systolic: error: --rtl:")
    assert "limit" in lines[0] and "per job" in lines[0]
