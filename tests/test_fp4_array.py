"""FP4 codes through the systolic arrays (both dataflows, both PE kinds) and the split
array (both dataflows, both boundary styles) on Icarus and Verilator, and the FP4 surface
of ``systolic gemm``. Every result must equal ``4 * decode(A) @ decode(B)`` computed from
ml_dtypes' decoding, and also the float64 product of the decoded values; RTL cycles must
equal the cycle model."""
import numpy as np
import pytest

from hdl.array import ArrayConfig
from hdl.mac import MacConfig
from hdl.split import SplitConfig
from sim.cli import main
from sim.drivers.gemm import exact_result, run_gemms
from sim.drivers.split import run_programs
from sim.models.program import SplitJob
from sim.models.fp4 import encode_fp4, fp4_values
from sim.runner import available_simulators

SIMS = available_simulators()
POS6, NEG6, HALF, NEG_HALF, NEG_ZERO = 0x7, 0xF, 0x1, 0x9, 0x8


def _need(simulator):
    if simulator not in SIMS:
        pytest.skip(f"{simulator} is not available here")


def _jobs(seed, shapes):
    """Random codes, then the extremes: all +6 x all -6, all 0.5 x all -0.5, -0 codes
    mixed in, mixed signs of the largest and smallest magnitudes."""
    rng = np.random.default_rng(seed)
    jobs = [(rng.integers(0, 16, (M, K)), rng.integers(0, 16, (K, N))) for M, K, N in shapes]
    K = 40
    jobs.append((np.full((3, K), POS6), np.full((K, 5), NEG6)))
    jobs.append((np.full((4, K), POS6), np.full((K, 4), POS6)))
    jobs.append((np.full((5, 7), HALF), np.full((7, 3), NEG_HALF)))
    mixed = rng.choice([POS6, NEG6, HALF, NEG_HALF, NEG_ZERO, 0], (6, 2 * K))
    zeros = np.where(rng.random((2 * K, 4)) < 0.5, NEG_ZERO, NEG6)
    jobs.append((mixed, zeros))
    return jobs


def _check(A, B, r, what):
    want = exact_result(A, B, "fp4")
    assert np.array_equal(r.C, want), f"{what}: wrong result"
    # a second, float reference: the decoded values multiplied in float64 (exact here)
    assert np.array_equal(r.C / 4, fp4_values(A) @ fp4_values(B)), what
    assert r.cycles == r.model_cycles, f"{what}: RTL {r.cycles} != model {r.model_cycles}"


# W = 12 (max_safe_k = 14) forces K passes on the extremes; the others are 16 bits.
# Verilator builds grow with the PE count (a 4x4 build takes minutes on a shared machine),
# so it gets a 2x3 OS array here and a 2x2 WS split array (1x1 tiles, every boundary a
# split boundary) below: both dataflows on both simulators.
DESIGNS = {
    "os4x4": (ArrayConfig(4, 4, "os", MacConfig(numerics="fp4")), ("icarus",)),
    "os2x3": (ArrayConfig(2, 3, "os", MacConfig(numerics="fp4")), ("verilator",)),
    "osdb4x4_dadda_p1": (ArrayConfig(4, 4, "os", MacConfig(numerics="fp4", multiplier="dadda",
                                                           pipeline=1), fold_overlap=True),
                         ("icarus",)),
    "ws4x4_p2_w12": (ArrayConfig(4, 4, "ws", MacConfig(numerics="fp4", pipeline=2,
                                                       acc_width=12)), ("icarus",)),
    "wsc3x4_booth": (ArrayConfig(3, 4, "ws", MacConfig(numerics="fp4", multiplier="booth",
                                                       fused=False), double_buffer=False),
                     ("icarus",)),
    "os4x4_behavioral_w12": (ArrayConfig(4, 4, "os", MacConfig(numerics="fp4", acc_width=12,
                                                               multiplier="behavioral")),
                             ("icarus",)),
}
CASES = [(name, sim) for name, (_, sims) in DESIGNS.items() for sim in sims]


@pytest.mark.parametrize("name,simulator", CASES)
def test_fp4_array_gemms(name, simulator):
    _need(simulator)
    config = DESIGNS[name][0]
    jobs = _jobs(11, [(1, 1, 1), (5, 9, 6), (4, 4, 4), (7, 3, 9)])
    results = run_gemms(jobs, config, simulator=simulator)
    for (A, B), r in zip(jobs, results):
        _check(A, B, r, f"{config.slug} {A.shape[0]}x{A.shape[1]}x{B.shape[1]}")
    if config.mac.acc_width == 12:              # 14 products of +-144 fit in 12 bits
        assert config.mac.max_safe_k == 14
        if config.dataflow == "os":             # WS splits K by the rows anyway
            assert max(r.k_passes for r in results) == 6     # K = 80


SPLITS = {
    "ws_mux": (SplitConfig(8, 8, 4, MacConfig(numerics="fp4"), style="mux"), ("icarus",)),
    "ws_mux_2x2": (SplitConfig(2, 2, 1, MacConfig(numerics="fp4"), style="mux"),
                   ("verilator",)),
    "ws_ports": (SplitConfig(8, 8, 4, MacConfig(numerics="fp4", multiplier="dadda"),
                             style="ports"), ("icarus",)),
    "os_mux": (SplitConfig(8, 8, 4, MacConfig(numerics="fp4", pipeline=1), style="mux",
                           dataflow="os"), ("icarus",)),
    "os_ports": (SplitConfig(8, 8, 4, MacConfig(numerics="fp4"), style="ports",
                             dataflow="os"), ("icarus",)),
}
SPLIT_CASES = [(name, sim) for name, (_, sims) in SPLITS.items() for sim in sims]


@pytest.mark.parametrize("name,simulator", SPLIT_CASES)
def test_fp4_split_array(name, simulator):
    """Four FP4 GEMMs at once on the quadrants (random and extreme codes), then one on
    the whole array, back to back without reset."""
    _need(simulator)
    config = SPLITS[name][0]
    extremes = _jobs(5, [(6, 11, 5)])
    quad = [SplitJob(A, B) for A, B in extremes[:4]]
    whole = [SplitJob(*extremes[-1])]
    programs = [[("quad", quad), ("whole", [whole])]]
    (result,) = run_programs(programs, config, simulator=simulator)
    assert result.cycles == result.model_cycles
    for job, r in zip(quad + whole, result.jobs):
        _check(job.A, job.B, r, f"{config.slug} {r.shape}")


# -- the CLI ---------------------------------------------------------------------------

def test_gemm_fp4_values_in_and_out(tmp_path, capsys):
    if "icarus" not in SIMS:
        pytest.skip("icarus is not available here")
    A = np.array([[0.5, -6.0, 1.5], [3.0, -0.0, 4.0]])
    B = np.array([[1.0, 2.0], [-0.5, 6.0], [0.0, -3.0]])
    np.save(tmp_path / "A.npy", A)
    np.save(tmp_path / "B.npy", B)
    out = tmp_path / "C.npy"
    assert main(["gemm", "--numerics", "fp4", "--a", str(tmp_path / "A.npy"), "--b",
                 str(tmp_path / "B.npy"), "--rows", "4", "--cols", "4", "--sim", "icarus",
                 "--out", str(out)]) == 0               # the os4x4 design above: one build
    C = np.load(out)
    assert C.dtype == np.float64 and C.tolist() == [[3.5, -39.5], [3.0, -6.0]]
    assert "C matches numpy A @ B (2x2)" in capsys.readouterr().out
    assert encode_fp4(A).tolist() == [[1, 15, 3], [5, 8, 6]]


@pytest.mark.parametrize("values, message", [
    ([[1.0, 2.5]], r"--a: \S+A.npy: A\[0,1\] = 2.5 is not an FP4 \(E2M1\) value"),
    ([[np.nan, 1.0]], r"A\[0,0\] = nan is not an FP4"),
    ([[np.inf, 1.0]], r"A\[0,0\] = inf is not an FP4"),
    ([[8.0, 1.0]], r"A\[0,0\] = 8.0 is not an FP4"),
])
def test_gemm_fp4_rejects_values_that_are_not_e2m1(tmp_path, capsys, values, message):
    np.save(tmp_path / "A.npy", np.array(values))
    np.save(tmp_path / "B.npy", np.ones((2, 2)))
    out = tmp_path / "C.npy"
    assert main(["gemm", "--numerics", "fp4", "--a", str(tmp_path / "A.npy"), "--b",
                 str(tmp_path / "B.npy"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("systolic: error: ")
    assert __import__("re").search(message, err), err
    assert not out.exists()


@pytest.mark.parametrize("argv, message", [
    (["verilog", "mac", "--numerics", "fp8"], "argument --numerics: invalid choice: 'fp8'"),
    (["verilog", "mac", "--numerics", "fp4", "--acc-width", "8"],
     "--acc-width: 8 bits cannot hold one FP4 product"),
    (["verilog", "mac", "--numerics", "fp4", "--unsigned"],
     "argument --unsigned: not allowed with argument --numerics"),
    (["verilog", "mac", "--multiplier", "shift"], "--multiplier: 'shift' is an FP4"),
    (["gemm", "--numerics", "fp4", "--split", "quad", "--rows", "4", "--cols", "4",
      "--tile", "2", "--a", "missing.npy", "--b", "missing.npy"], "cannot read missing.npy"),
])
def test_numerics_bad_input(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_signed_unsigned_are_aliases(capsys):
    def text(argv):
        assert main(["verilog", "mac", *argv]) == 0
        return capsys.readouterr().out
    assert text(["--signed"]) == text(["--numerics", "int4"]) == text([])
    assert text(["--unsigned"]) == text(["--numerics", "uint4"])
    fp4 = text(["--numerics", "fp4"])
    assert fp4 == text(["--numerics", "fp4", "--multiplier", "shift"]) != text([])
    assert "module mac(" in fp4.replace("module mac (", "module mac(")
