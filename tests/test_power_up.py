"""Power-up: the emitted Verilog gives the same outputs in every cycle from power-up on
Icarus (-g2005 and -g2012) and Verilator, for MACs, arrays and split arrays.

Each design is wrapped in a probe whose one output is every output of the design,
marked valid in every cycle, and played by the native player (:mod:`sim.native`) on
seeded random inputs: a held reset of two cycles, then random cycles, three times. The
MACs are also checked against the cycle model (:class:`sim.models.mac.MacModel`)."""
import numpy as np
import pytest

from hdl.mac import MacConfig
from hdl.array import ArrayConfig
from hdl.split import SplitConfig
from sim.models.mac import MacModel
from sim.native.build import build_player, run_player
from sim.native.run import array_layout, split_layout
from sim.native.stream import Layout, encode_stream, decode_results
from sim.runner import REPO_ROOT as ROOT, available_simulators

SIMS = available_simulators()
CYCLES, JOBS = 24, 3


def _mac(cfg):
    text = cfg.verilog()
    return text, Layout.of("mac", [("a", 4), ("b", 4)], [("", "acc", 1, cfg.acc_width)])


def _array(cfg):
    return cfg.verilog(), array_layout(cfg)


def _split(cfg):
    return cfg.verilog(), split_layout(cfg)


DESIGNS = {
    "mac_p1": (_mac, MacConfig(pipeline=1)),
    "mac_p2_booth_unsigned": (_mac, MacConfig(pipeline=2, multiplier="booth", signed=False)),
    "mac_p2_behavioral": (_mac, MacConfig(pipeline=2, multiplier="behavioral")),
    "array_os2x2_p1": (_array, ArrayConfig(2, 2, "os", MacConfig(pipeline=1))),
    "array_osdb2x2_p2": (_array, ArrayConfig(2, 2, "os", MacConfig(pipeline=2),
                                             fold_overlap=True)),
    "array_ws2x3_p1": (_array, ArrayConfig(2, 3, "ws", MacConfig(pipeline=1))),
    "split_ws4x4_t2_p1": (_split, SplitConfig(4, 4, 2, MacConfig(pipeline=1))),
    "split_os4x4_t2_p2": (_split, SplitConfig(4, 4, 2, MacConfig(pipeline=2), dataflow="os",
                                              style="ports")),
}
# Verilator builds cost tens of seconds each: one MAC here (tests/test_native.py plays
# arrays and split arrays on Verilator and checks every result).
VERILATOR_DESIGNS = ("mac_p1",)


def probe(text, layout):
    """The design inside a top ``power_up_probe`` with the same inputs and one output
    pair: every output of the design, padded to whole bytes, as 8-bit lanes, each lane
    valid in every cycle."""
    outs = [o for _, o, _, _ in layout.outputs] + [v for v, _, _, _ in layout.outputs if v]
    widths = {o: L * W for _, o, L, W in layout.outputs}
    widths.update({v: L for v, _, L, _ in layout.outputs if v})
    bits = sum(widths[o] for o in outs)
    padded = (bits + 7) // 8 * 8
    ports = ["input wire clk", "input wire rst"]
    ports += [f"input wire [{b - 1}:0] {n}" for n, b in layout.inputs]
    ports += [f"output wire [{padded // 8 - 1}:0] probe_valid",
              f"output wire [{padded - 1}:0] probe_out"]
    conns = ["clk", "rst"] + [n for n, _ in layout.inputs] + outs
    pad = [f"{padded - bits}'b0"] if padded > bits else []
    wrapper = ("module power_up_probe (\n    " + ",\n    ".join(ports) + "\n);\n"
               + "".join(f"    wire [{widths[o] - 1}:0] {o};\n" for o in outs)
               + f"    {layout.top} dut (" + ", ".join(f".{c}({c})" for c in conns) + ");\n"
               + f"    assign probe_valid = {{{padded // 8}{{1'b1}}}};\n"
               + "    assign probe_out = {" + ", ".join(pad + outs[::-1]) + "};\n")
    wrapper += "endmodule\n"
    return text + "\n" + wrapper, Layout.of("power_up_probe", layout.inputs,
                                             [("probe_valid", "probe_out", padded // 8, 8)])


def _stimulus(layout, seed):
    rng = np.random.default_rng(seed)
    jobs = []
    for _ in range(JOBS):
        rec = rng.integers(0, 256, (CYCLES, layout.record_bytes), dtype=np.uint8)
        for (_, bits), off in zip(layout.inputs, layout.offsets):
            nb = (bits + 7) // 8
            if bits % 8:
                rec[:, off + nb - 1] &= (1 << (bits % 8)) - 1
        jobs.append(rec)
    return jobs


def _play(name, simulator, generation, tmp_path):
    make, cfg = DESIGNS[name]
    text, layout = probe(*make(cfg))
    root = ROOT / "build" / "native" / "tests"
    tmp_path.mkdir(parents=True, exist_ok=True)
    build = build_player(text, layout, name, simulator, generation=generation,
                         build_root=root)
    jobs = _stimulus(layout, seed=sum(map(ord, name)))
    stream, results = tmp_path / f"{name}.hex", tmp_path / f"{name}.txt"
    encode_stream(stream, layout, jobs)
    run_player(build, stream, results)
    traces = decode_results(results, layout, JOBS)      # an X or Z fails to decode
    lanes = layout.outputs[0][2]
    values = []
    for trace in traces:
        t, lane, value = trace["events_0"]              # every lane of every cycle
        assert len(t) == CYCLES * lanes
        assert sorted(zip(t.tolist(), lane.tolist())) == [
            (c, k) for c in range(CYCLES) for k in range(lanes)]
        grid = np.zeros((CYCLES, lanes), dtype=np.int64)
        grid[t, lane] = value
        values.append(grid)
    return layout, jobs, values


MODES = [("icarus", "2005"), ("icarus", "2012"), ("verilator", "")]


@pytest.mark.parametrize("name", list(DESIGNS))
def test_same_outputs_from_power_up(name, tmp_path):
    runs = {}
    for simulator, generation in MODES:
        if simulator not in SIMS:
            continue
        if simulator == "verilator" and name not in VERILATOR_DESIGNS:
            continue
        runs[(simulator, generation)] = _play(name, simulator, generation or "2005",
                                              tmp_path / f"{simulator}{generation}")
    if ("icarus", "2005") not in runs:
        pytest.skip("icarus not installed")
    (layout, jobs, ref), *others = runs.values()
    for key, (_, _, values) in runs.items():
        for j, (got, want) in enumerate(zip(values, ref)):
            assert np.array_equal(got, want), f"{key} differs in job {j}"
    make, cfg = DESIGNS[name]
    if make is _mac:
        # acc is bytes 0..W/8-1 of the probe word; a is record byte 0 bits 0-3, b byte 1
        for j, rec in enumerate(jobs):
            model = MacModel(signed=cfg.signed, acc_width=cfg.acc_width,
                             pipeline=cfg.pipeline)
            want = [model.step(int(r[0]), int(r[1])) for r in rec]
            lanes = ref[j][:, :cfg.acc_width // 8].astype(np.uint64)
            got = (lanes << (np.arange(lanes.shape[1], dtype=np.uint64) * 8)).sum(axis=1)
            assert got.tolist() == want, f"job {j}"
