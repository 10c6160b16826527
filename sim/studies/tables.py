"""Markdown tables (readable in a terminal too) and JSON files for CLI output and reports."""
import json
from pathlib import Path

from hdl.emit import write_atomic

__all__ = ["markdown_table", "write_json", "format_number"]


def format_number(value):
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, bool) or value is None:
        return "-" if value is None else ("yes" if value else "no")
    return str(value)


def markdown_table(headers, rows):
    """A GitHub-flavoured Markdown table that also reads well in a terminal: columns
    padded to their widths, numbers right-aligned."""
    cells = [[format_number(v) for v in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) if cells else len(str(h))
              for i, h in enumerate(headers)]
    numeric = [all(isinstance(row[i], (int, float)) and not isinstance(row[i], bool)
                   for row in rows) and rows for i in range(len(headers))]

    def line(values):
        out = []
        for i, v in enumerate(values):
            out.append(v.rjust(widths[i]) if numeric[i] else v.ljust(widths[i]))
        return "| " + " | ".join(out) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if numeric[i] else ("-" * (w + 2))
                          for i, w in enumerate(widths)) + "|"
    return "\n".join([line([str(h) for h in headers]), rule, *(line(r) for r in cells)])


def write_json(path, data):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")
