"""The digits MLP in W4A8 (int8 activations, int4 weights; sim.studies.digits): the
quantization against its definition, the whole test set in numpy, a few test images with
both GEMMs on small fusable arrays in RTL (C == numpy's int64 product, cycles == model),
and ``systolic digits --numerics w4a8`` end to end and on bad input."""
import json
import shutil

import numpy as np
import pytest

from sim.drivers.blocked import model_runner, rtl_runner
from sim.studies import digits

ICARUS = shutil.which("iverilog") is not None


def _in_process(argv, capsys):
    from sim.cli import main
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_quantize_symmetric_against_its_definition():
    """Round to nearest even of x / (peak / qmax), clamped; per-column peaks; extremes."""
    x = np.array([[0.5, -1.0, 3.0], [-0.25, 1.0, -3.5], [0.0, 0.0, 0.75]])
    q, s = digits.quantize_symmetric(x, 4, np.abs(x).max(axis=0))
    assert np.allclose(s, [0.5 / 7, 1 / 7, 3.5 / 7])
    # by hand: 0.5/(0.5/7) = 7, -0.25/(0.5/7) = -3.5 -> -4 (even), 3/(0.5) = 6, -7, 1.5 -> 2
    assert q.tolist() == [[7, -7, 6], [-4, 7, -7], [0, 0, 2]]
    q8, s8 = digits.quantize_symmetric(np.array([2.0, -2.0, 0.5, 1.0]), 8, 1.0)
    assert s8 == 1 / 127 and q8.tolist() == [127, -128, 64, 127]   # beyond the peak: clamped
    zero, sz = digits.quantize_symmetric(np.zeros((2, 2)), 4, np.zeros(2))
    assert zero.tolist() == [[0, 0], [0, 0]] and sz.tolist() == [1.0, 1.0]


def test_w4a8_full_test_set_in_numpy():
    """The whole test set with the numpy stand-in for the array: above 90% (the
    accuracy the docs report comes from this network; the RTL reproduces it exactly),
    and the logits agree with an independent float64 forward pass over the
    dequantized int8 activations and int4 weights."""
    report = digits.run_digits(runners={"w4a8": model_runner("w4a8")})
    assert report.n_test == 360 and report.accuracy["w4a8"] > 0.9, report.accuracy
    assert [g.shape for g in report.layers["w4a8"]] == [(360, 64, 32), (360, 32, 10)]
    mlp = digits.train()
    X, y = digits.load_split()[1], digits.load_split()[3]
    X_train = digits.load_split()[0]
    s1 = float(np.abs(X_train).max()) / 127               # static: training images only
    h_train = np.maximum(X_train @ mlp.W1 + mlp.b1, 0)
    s2 = float(h_train.max()) / 127

    def layer(x, s, W):
        qx = np.clip(np.round(x / s), -128, 127)            # numpy round: half to even
        sw = np.abs(W).max(axis=0) / 7
        qw = np.clip(np.round(W / sw), -8, 7)
        assert np.abs(qw).max(axis=0).tolist() == [7] * W.shape[1]   # per channel
        return (qx * s) @ (qw * sw)
    h = np.maximum(layer(X.astype(np.float64), s1, mlp.W1.astype(np.float64)) + mlp.b1, 0)
    logits = layer(h.astype(np.float32).astype(np.float64), s2,
                   mlp.W2.astype(np.float64)) + mlp.b2
    assert np.allclose(report.logits["w4a8"], logits, rtol=1e-9, atol=1e-9)
    assert report.accuracy["w4a8"] == np.mean(np.argmax(logits, 1) == y)


@pytest.mark.skipif(not ICARUS, reason="Icarus is not installed")
@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_w4a8_digits_gemms_on_rtl(dataflow):
    """Six test images, both layers on the 4x4 array fused for W4A8 (the array
    ``systolic digits --rows 4 --cols 4`` builds): every GEMM's RTL C equals numpy's
    int64 product of its int8 x int4 operands, its cycles the model's, and the logits
    those of the numpy stand-in."""
    array = digits.digits_arrays(4, 4, dataflow)["w4a8"]
    assert array.fusion == "w4a8"
    rtl = rtl_runner(array, simulator="icarus", precision="w4a8")
    seen = []

    def runner(jobs):
        out = rtl(jobs)
        seen.extend((A, B, C, r) for (A, B), (C, r) in zip(jobs, out))
        return out
    n = 6
    report = digits.run_digits(runners={"w4a8": runner}, limit=n)
    assert report.all_match
    assert [g.shape for g in report.layers["w4a8"]] == [(n, 64, 32), (n, 32, 10)]
    assert len(seen) == 2
    for A, B, C, r in seen:
        assert np.abs(A).max() > 7 and A.min() >= -128 and A.max() <= 127   # 8-bit A
        assert B.min() >= -8 and B.max() <= 7
        assert np.array_equal(C, A.astype(np.int64) @ B.astype(np.int64))
        assert r.cycles == r.model_cycles > 0
    model_logits, _ = digits.quantized_forward(digits.train(),
                                               digits.load_split()[1][:n], "w4a8",
                                               runner=model_runner("w4a8"))
    assert np.array_equal(report.logits["w4a8"], model_logits)


@pytest.mark.skipif(not ICARUS, reason="Icarus is not installed")
def test_digits_command_w4a8(tmp_path, capsys):
    """``systolic digits --numerics w4a8``: exit 0, the accuracy and quantization lines,
    and a report whose numbers agree (cycles == model per GEMM)."""
    report = tmp_path / "d.json"
    code, stdout, err = _in_process(["digits", "--numerics", "w4a8", "--limit", "3",
                                     "--rows", "4", "--cols", "4", "--sim", "icarus",
                                     "--report", report], capsys)
    assert code == 0, stdout + err
    r = json.loads(report.read_text())
    assert r["all_rtl_gemms_match"] is True and set(r["accuracy"]) == {"float32", "w4a8"}
    assert "per output channel" in r["quantization"]["w4a8"]
    for g in r["gemms"]["w4a8"]:
        assert g["matches"] and g["cycles"] == g["model_cycles"] > 0
    assert f"w4a8    (RTL)  : test accuracy {r['accuracy']['w4a8']:.1%}; PASS" in stdout
    assert "cocotb path, gate model" in stdout and "activations int8 per tensor" in stdout


@pytest.mark.parametrize("argv", [["--path", "native"], ["--model", "twin"]])
def test_digits_w4a8_refuses_the_native_path(capsys, argv):
    code, stdout, err = _in_process(["digits", "--numerics", "w4a8", "--limit", "2",
                                     *argv], capsys)
    assert code == 2, stdout + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "not for a fusable array" in lines[0], err


@pytest.mark.skipif(not ICARUS, reason="Icarus is not installed")
def test_precision_bench_digits_rows():
    """The bench's digits table (``systolic bench --only precision``): one row per
    network, W4A8 from the RTL (exact, cycles == model) with the accuracy of the numpy
    stand-in, which is independent of the RTL."""
    from sim.studies.precision_bench import digits_rows
    rows = digits_rows(size=4, simulator="icarus", limit=5)
    assert [r["network"] for r in rows] == ["float32", "int4", "mxfp4", "w4a8"]
    w4a8 = rows[-1]
    assert w4a8["exact"] is True and w4a8["n_test"] == 5 and "RTL 4x4" in w4a8["gemms"]
    model = digits.run_digits(runners={"w4a8": model_runner("w4a8")}, limit=5)
    assert w4a8["accuracy"] == round(model.accuracy["w4a8"], 4)
    assert all("|" not in str(v) for r in rows for v in r.values())     # Markdown cells
