"""The MAC area study (sim.studies.area): the design grid, labels and table rows.

The rows are built from fake synthesis results carrying the numbers of the README's area
table, so the ratios and the order can be checked against that table by hand; Yosys
itself is checked in test_synth."""
from types import SimpleNamespace

import pytest

import sim.studies.area as area
from hdl.mac import MacConfig
from sim.studies.area import (AREA_HEADERS, all_mac_configs, area_rows, best_behavioral,
                              design_label, flows_for)

BEHAV = MacConfig(multiplier="behavioral")


def _res(flow, transistors, depth, *, cells=100, flops=16, ice40=None):
    return SimpleNamespace(flow=flow, transistors=transistors, depth=depth, cells=cells,
                           flops=flops, ice40=ice40)


def test_design_labels():
    assert design_label(MacConfig()) == "dadda + ripple, fused, signed W=16 P=0"
    assert design_label(MacConfig(multiplier="booth", adder="kogge-stone", fused=False,
                                  signed=False, acc_width=24, pipeline=2)) == \
        "booth + kogge-stone, unfused, unsigned W=24 P=2"
    assert design_label(BEHAV.replace(pipeline=1)) == "behavioral (a*b, +), signed W=16 P=1"


def test_flows_for():
    assert flows_for(BEHAV) == ["synth", "synth -booth", "synth -arith_tree"]
    assert flows_for(MacConfig(multiplier="wallace")) == ["synth"]


def test_all_mac_configs_is_the_full_grid():
    configs = all_mac_configs(signed=False, acc_width=12, pipelines=(0, 2))
    want = {(m, a, f, p) for m in ("array", "wallace", "dadda", "booth")
            for a in ("ripple", "kogge-stone", "brent-kung", "sklansky")
            for f in (True, False) for p in (0, 2)}
    got = [(c.multiplier, c.adder, c.fused, c.pipeline) for c in configs if not c.behavioral]
    assert len(got) == len(want) == 64 and set(got) == want
    behav = [c for c in configs if c.behavioral]
    assert sorted(c.pipeline for c in behav) == [0, 2]
    assert all(not c.signed and c.acc_width == 12 for c in configs)
    assert len({c.slug for c in configs}) == len(configs) == 66


# The README's area table (signed, W=16, P=0): design, flow, transistors, depth, ratio
README = [(MacConfig(adder="kogge-stone"), "synth", 1272, 24, 0.942),
          (MacConfig(), "synth", 1282, 24, 0.95),
          (MacConfig(multiplier="booth"), "synth", 1308, 26, 0.969),
          (BEHAV, "synth -booth", 1350, 36, 1.0),
          (BEHAV, "synth -arith_tree", 1506, 32, 1.116),
          (BEHAV, "synth", 2016, 35, 1.493)]


def test_area_rows_reproduce_the_readme_table():
    ice = {"lut4": 61, "carry": 0, "dff": 16}
    results = [(cfg, _res(flow, t, d, ice40=ice)) for cfg, flow, t, d, _ in README]
    rows = area_rows(results[::-1])                 # any input order
    assert all(len(r) == len(AREA_HEADERS) for r in rows)
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in rows] == \
        [(design_label(cfg), flow, t, ratio, d) for cfg, flow, t, d, ratio in README]
    by_header = dict(zip(AREA_HEADERS, rows[0]))
    assert by_header["vs best behav."] == 0.942 and by_header["iCE40 LUT4"] == 61
    assert by_header["iCE40 DFF"] == 16 and by_header["flops"] == 16
    assert best_behavioral(results)[(True, 16, 0)].flow == "synth -booth"


def test_area_rows_group_by_sign_width_and_pipeline():
    u = dict(signed=False)
    results = [
        (MacConfig(pipeline=1), _res("synth", 1500, 20)),                # no reference
        (MacConfig(**u, acc_width=12), _res("synth", 900, 18)),
        (BEHAV.replace(**u, acc_width=12), _res("synth", 1200, 30)),
        (BEHAV.replace(**u, acc_width=12), _res("synth -booth", 1000, 31)),
        (MacConfig(), _res("synth", 1282, 24)),
        (BEHAV, _res("synth -booth", 1350, 36)),
        (MacConfig(acc_width=8), _res("synth", 700, 14)),
    ]
    rows = area_rows(results)
    # signed first, then W, then P, then transistors; ratios within (signed, W, P)
    assert [(r[0], r[2], r[3]) for r in rows] == [
        ("dadda + ripple, fused, signed W=8 P=0", 700, None),
        ("dadda + ripple, fused, signed W=16 P=0", 1282, 0.95),
        ("behavioral (a*b, +), signed W=16 P=0", 1350, 1.0),
        ("dadda + ripple, fused, signed W=16 P=1", 1500, None),
        ("dadda + ripple, fused, unsigned W=12 P=0", 900, 0.9),
        ("behavioral (a*b, +), unsigned W=12 P=0", 1000, 1.0),
        ("behavioral (a*b, +), unsigned W=12 P=0", 1200, 1.2),
    ]
    # no iCE40 numbers: empty columns, not an error
    assert rows[0][-3:] == [None, None, None]


def test_synthesize_configs_jobs(monkeypatch):
    seen = []

    def fake_many(jobs, progress=None, executor=None):
        seen.extend(jobs)
        return [_res(j["flow"], 1000 + i, 10) for i, j in enumerate(jobs)]

    monkeypatch.setattr(area, "synthesize_jobs", fake_many)
    gate = MacConfig(multiplier="wallace")
    out = area.synthesize_configs([gate, BEHAV])
    assert [(j["top"], j["flow"]) for j in seen] == [
        ("mac", "synth"), ("mac", "synth"), ("mac", "synth -booth"),
        ("mac", "synth -arith_tree")]
    assert seen[0]["verilog"] == gate.verilog()
    assert all(j["verilog"] == BEHAV.verilog() for j in seen[1:])
    assert [(c, r.flow, r.transistors) for c, r in out] == [
        (gate, "synth", 1000), (BEHAV, "synth", 1001), (BEHAV, "synth -booth", 1002),
        (BEHAV, "synth -arith_tree", 1003)]


@pytest.mark.parametrize("bad", [{"pipeline": 3}, {"acc_width": 7}])
def test_all_mac_configs_rejects_bad_parameters(bad):
    with pytest.raises(ValueError):
        all_mac_configs(**{"pipelines": (bad.get("pipeline", 0),),
                           "acc_width": bad.get("acc_width", 16)})
