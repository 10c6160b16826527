"""Emitted MAC Verilog: deterministic, path-free, and gate-level (no * or multi-bit +)."""
import re

import pytest

from hdl.emit import to_verilog
from hdl.mac import MacConfig, ConfigError, MULTIPLIER_CHOICES, ADDER_CHOICES

GATE_LEVEL = [m for m in MULTIPLIER_CHOICES if m != "behavioral"]


def assigns(verilog):
    return [line for line in verilog.splitlines() if line.strip().startswith("assign")]


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("adder", ADDER_CHOICES)
@pytest.mark.parametrize("multiplier", GATE_LEVEL)
def test_gate_level_has_no_arithmetic_operators(multiplier, adder, fused):
    for pipeline in (0, 2):
        text = to_verilog(MacConfig(multiplier=multiplier, adder=adder, fused=fused,
                                    pipeline=pipeline).build(), name="mac")
        body = "\n".join(line.split("=", 1)[1] for line in assigns(text))
        assert not re.search(r"[-+*]", body), f"arithmetic operator in {multiplier}/{adder}"
        assert re.search(r"\^", body) and re.search(r"&", body)


def test_behavioral_uses_operators():
    text = to_verilog(MacConfig(multiplier="behavioral").build(), name="mac")
    body = "\n".join(assigns(text))
    assert "*" in body and "+" in body


@pytest.mark.parametrize("config", [MacConfig(), MacConfig(multiplier="booth", pipeline=2,
                                                           signed=False, acc_width=37)])
def test_deterministic_and_path_free(config):
    first = to_verilog(config.build(), name="mac")
    second = to_verilog(config.build(), name="mac")
    assert first == second
    assert "/work" not in first and "src =" not in first
    assert re.search(r"^module mac\(", first, re.M)
    assert re.search(rf"output \[{config.acc_width - 1}:0\] acc;", first)


@pytest.mark.parametrize("changes, field", [
    ({"multiplier": "quantum"}, "multiplier"),
    ({"adder": "carry-skip"}, "adder"),
    ({"acc_width": 7}, "acc_width"),
    ({"acc_width": 65}, "acc_width"),
    ({"pipeline": 3}, "pipeline"),
    ({"pipeline": -1}, "pipeline"),
])
def test_config_rejects_bad_values(changes, field):
    with pytest.raises(ConfigError) as info:
        MacConfig(**changes)
    assert info.value.field == field
    assert "allowed" in str(info.value)


def test_cached_verilog_matches_and_is_reused(tmp_path, monkeypatch):
    import hdl.cache
    monkeypatch.setattr(hdl.cache, "_memo", {})
    cache = hdl.cache.Cache(tmp_path)
    cfg = MacConfig(multiplier="booth", pipeline=1)
    calls = []

    def build():
        calls.append(1)
        return cfg.build()

    first = hdl.cache.cached_verilog(f"mac {cfg!r}", build, name="mac", cache=cache)
    assert first == to_verilog(cfg.build(), name="mac")
    assert len(list((tmp_path / "verilog").glob("*.v"))) == 1
    monkeypatch.setattr(hdl.cache, "_memo", {})              # a new process: from disk
    assert hdl.cache.cached_verilog(f"mac {cfg!r}", build, name="mac", cache=cache) == first
    assert len(calls) == 1
    assert cfg.verilog(cache=cache) == first
    other = MacConfig(multiplier="booth", pipeline=2).verilog(cache=cache)
    assert other != first and len(list((tmp_path / "verilog").glob("*.v"))) == 2
    # no cache: converted again, nothing written
    assert hdl.cache.cached_verilog(f"mac {cfg!r}", build, name="mac", cache=False) == first
    assert len(calls) == 2 and len(list((tmp_path / "verilog").glob("*.v"))) == 2
