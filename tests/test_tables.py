"""Markdown tables and JSON files of the CLI and the reports (sim.studies.tables)."""
import json

import pytest

from sim.studies.tables import format_number, markdown_table, write_json


@pytest.mark.parametrize("value, text", [
    (3, "3"), (-12, "-12"), (0, "0"), (12345678, "12345678"),
    (0.123456, "0.123"), (99.94, "99.9"), (-0.5, "-0.5"), (1e-5, "1e-05"),
    (100.0, "100"), (1234.4, "1,234"), (12345.6, "12,346"), (-150.0, "-150"),
    (True, "yes"), (False, "no"), (None, "-"), ("dadda", "dadda"),
])
def test_format_number(value, text):
    assert format_number(value) == text


def test_markdown_table_by_hand():
    got = markdown_table(["name", "n", "x", "ok"],
                         [["a", 1, 0.123456, True], ["bbbb", 1234, 12345.6, None]])
    assert got == "\n".join([
        "| name |    n |      x | ok  |",
        "|------|-----:|-------:|-----|",
        "| a    |    1 |  0.123 | yes |",
        "| bbbb | 1234 | 12,346 | -   |",
    ])


def test_markdown_table_alignment_rules():
    # a column is right-aligned only if every value is a number (bools and None are not)
    got = markdown_table(["k", "v"], [["x", 1], ["y", None]]).splitlines()
    assert got[1] == "|---|---|" and got[3] == "| y | - |"
    # a long header sets the width; numbers still align right under it
    got = markdown_table(["config", "transistors"], [["a", 5], ["bb", 1272]]).splitlines()
    assert got == ["| config | transistors |", "|--------|------------:|",
                   "| a      |           5 |", "| bb     |        1272 |"]
    # no rows: the header and the rule, left-aligned
    assert markdown_table(["a", "bb"], []) == "| a | bb |\n|---|----|"


def test_markdown_table_is_well_formed_gfm():
    rows = [["dadda + ripple, fused", "synth", 1282, 0.95], ["behavioral", "synth -booth",
                                                            1350, 1.0]]
    lines = markdown_table(["design", "flow", "transistors", "ratio"], rows).splitlines()
    assert len(lines) == 2 + len(rows)
    assert len({len(line) for line in lines}) == 1               # padded to one width
    assert all(line.startswith("| ") or line.startswith("|-") for line in lines)
    assert all(line.count("|") == 5 for line in lines)
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    assert cells[0] == ["design", "flow", "transistors", "ratio"]
    assert cells[2] == ["dadda + ripple, fused", "synth", "1282", "0.95"]
    assert cells[3] == ["behavioral", "synth -booth", "1350", "1"]


def test_write_json(tmp_path):
    path = tmp_path / "deep" / "er" / "out.json"
    data = {"z": 1, "a": [1.5, None, True], "m": {"k": "v"}}
    write_json(path, data)
    text = path.read_text()
    assert text.endswith("}\n") and text.startswith('{\n  "z": 1,')  # indented, key order kept
    assert json.loads(text) == data
    write_json(path, {"b": 2})                                      # replaced, not appended
    assert json.loads(path.read_text()) == {"b": 2}
    assert [p.name for p in path.parent.iterdir()] == ["out.json"]  # no temporary left
