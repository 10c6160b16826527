"""The Verilog of a representative grid of designs, pinned by SHA-256.

Every design the CLI can emit (MACs over the option grid, arrays of both dataflows and
PE kinds, split arrays of both dataflows and styles) must come out byte-identical across
refactors. ``tests/data/verilog_sha256.json`` holds the expected hashes; regenerate it
only for an intended change of the generated hardware, with::

    .venv/bin/python tests/test_verilog_hashes.py --update
"""
import contextlib
import hashlib
import io
import json
import sys
from pathlib import Path

import pytest

HASHES = Path(__file__).resolve().parent / "data" / "verilog_sha256.json"

MAC_GRID = (
    [["--multiplier", m, "--adder", a]
     for m in ("array", "wallace", "dadda", "booth", "behavioral")
     for a in ("ripple", "kogge-stone", "brent-kung", "sklansky")]
    + [["--no-fused"], ["--no-fused", "--multiplier", "booth"], ["--unsigned"],
       ["--unsigned", "--multiplier", "array"], ["--pipeline", "1"],
       ["--pipeline", "2", "--multiplier", "wallace"], ["--acc-width", "8"],
       ["--acc-width", "32", "--adder", "kogge-stone"], ["--acc-width", "64"]]
)
ARRAY_GRID = [
    [*size, *flow, *kind]
    for size in (["--rows", "4", "--cols", "4"], ["--rows", "3", "--cols", "5"])
    for flow, kinds in ((["--dataflow", "os"], ([], ["--fold-overlap"])),
                        (["--dataflow", "ws"], ([], ["--fold-overlap"], ["--no-shadow"])))
    for kind in kinds
] + [["--rows", "2", "--cols", "2", "--pipeline", "1", "--unsigned"],
     ["--rows", "2", "--cols", "3", "--dataflow", "ws", "--multiplier", "behavioral"]]
SPLIT_GRID = [
    ["--rows", "8", "--cols", "8", "--tile", "4", "--dataflow", d, "--style", s, *extra]
    for d in ("ws", "os") for s in ("mux", "ports") for extra in ([], ["--fold-overlap"])
] + [["--rows", "6", "--cols", "4", "--tile-rows", "3", "--tile-cols", "2"]]


def designs():
    for args in MAC_GRID:
        yield ["mac", *args]
    for args in ARRAY_GRID:
        yield ["array", *args]
    for args in SPLIT_GRID:
        yield ["split", *args]


def emit(argv):
    from sim.cli import main
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["verilog", *argv]) == 0
    return out.getvalue()


def digest(argv):
    return hashlib.sha256(emit(argv).encode()).hexdigest()


@pytest.mark.parametrize("argv", list(designs()), ids=" ".join)
def test_verilog_is_byte_identical(argv):
    expected = json.loads(HASHES.read_text())
    key = " ".join(argv)
    assert key in expected, f"no pinned hash for {key!r}; run this file with --update"
    assert digest(argv) == expected[key], f"Verilog of `systolic verilog {key}` changed"


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit("usage: tests/test_verilog_hashes.py --update")
    sys.path.insert(0, str(HASHES.parents[2]))
    table = {" ".join(a): digest(a) for a in designs()}
    HASHES.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(table)} hashes to {HASHES}")
