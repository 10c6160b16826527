"""The operand stream of the native simulation path and the results it gives back.

Both native players (the Verilator C++ harness and the Icarus Verilog player, see
:mod:`sim.native.build`) read the same text *memory file* of hex words, whitespace
separated (one word per line as written here), and write the same text result file.

Stream (``.hex``)::

    53595354          magic ("SYST")
    LLLLLLLL          layout id: 32-bit hash of the design's port layout (below)
    J                 number of jobs
    then per job:
    T                 cycles to play
    T records         one per cycle: every input port of the design, hex, MSB first

:func:`encode_stream` writes a job from its records at once or chunk by chunk (a split
program's windows, :func:`sim.drivers.split.program_chunks`), and both players read the
file line by line: neither side holds a whole program's records.

A record is the concatenation of the input ports in name order, each padded to whole
bytes, the first port in the lowest bits (port ``p`` is bits ``[8*off_p +: width_p]``
of the record word, ``off_p`` its byte offset). Before each job the player holds
``rst`` for two cycles with every input 0, then plays cycles 0..T-1: inputs of cycle t
are applied, the rising edge t samples them, and the outputs that edge produced are
read before the inputs of cycle t+1 are applied (the timing of :mod:`sim.tb.array`).

Results: only the result events come back, streamed, never a whole output vector per
cycle. The Verilator harness writes them in binary (``.bin``): the 8 bytes
``SYSTRES1``, then 16-byte little-endian records (:data:`EVENT_DTYPE`)::

    t lane pair kind value     kind 0: after edge t, lane ``lane`` of output pair
                               ``pair`` was valid and showed ``value`` (its W bits)
                               kind 1 / 2: job t is done; value = the wall / process CPU
                               nanoseconds of its cycles

The Icarus player writes text, one line per cycle with a valid bit (a Verilog player
cannot cheaply write per-lane records)::

    R t V0 O0 [V1 O1 ...]   after edge t some valid bit is set: per output pair
                            (valid vector, value vector) in hex, MSB first
    E j -1 -1               job j is done (the driver times the whole run)

:func:`decode_results` reads either in chunks (numpy, bounded memory) into the same
per-job result events: per output pair ``(t, lane, raw value)`` arrays, the form the
drivers decode (:func:`sim.drivers.gemm.dense_events`), so both paths share that code.
Memory is 24 bytes per result event, whatever the width of the array;
:func:`iter_results` hands the jobs out one at a time, so a run's memory is that of
its largest job.
"""
import hashlib
from dataclasses import dataclass

import numpy as np

__all__ = ["Layout", "StreamError", "MAGIC", "RESULTS_MAGIC", "EVENT_DTYPE",
           "encode_stream", "decode_results", "iter_results", "records", "job_length"]

MAGIC = 0x53595354
RESULTS_MAGIC = b"SYSTRES1"
EVENT_DTYPE = np.dtype([("t", "<u4"), ("lane", "<u2"), ("pair", "u1"), ("kind", "u1"),
                        ("value", "<u8")])
_CHUNK = 1 << 20                # events (binary) or lines (text) parsed at a time
_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)


class StreamError(ValueError):
    """A stream or result file the player (or the driver) cannot read; one line."""


@dataclass(frozen=True)
class Layout:
    """Input ports ``[(name, bits)]`` (in record order: sorted by name) and output pairs
    ``[(valid name, value name, lanes, lane bits)]`` of one design's top. ``settle``:
    the design has clock gates whose latches must see each cycle's inputs before the
    clock edge (the harness then evaluates once more per cycle; a ``clk_en`` input
    implies it)."""
    top: str
    inputs: tuple
    outputs: tuple
    settle: bool = False

    @classmethod
    def of(cls, top, inputs, outputs, *, settle=False):
        ins = tuple(sorted((str(n), int(b)) for n, b in inputs))
        outs = tuple((str(v), str(o), int(L), int(W)) for v, o, L, W in outputs)
        return cls(top, ins, outs, bool(settle or any(n == "clk_en" for n, _ in ins)))

    @property
    def offsets(self):
        """Byte offset of every input port in a record."""
        out, off = [], 0
        for _, bits in self.inputs:
            out.append(off)
            off += (bits + 7) // 8
        return out

    @property
    def record_bytes(self):
        return sum((b + 7) // 8 for _, b in self.inputs)

    @property
    def layout_id(self):
        text = f"{self.top};" + ",".join(f"{n}:{b}" for n, b in self.inputs) + ";" + \
            ",".join(f"{v}:{o}:{L}:{W}" for v, o, L, W in self.outputs)
        return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def records(layout, ports, length):
    """``uint8 [length, record_bytes]`` records from ``ports``: name -> packed bytes
    ``[T, nbytes]`` (little-endian, as :func:`sim.drivers.gemm._pack` makes them);
    ports not given are 0."""
    rec = np.zeros((length, layout.record_bytes), np.uint8)
    for (name, bits), off in zip(layout.inputs, layout.offsets):
        nb = (bits + 7) // 8
        data = ports.get(name)
        if data is None:
            continue
        if data.shape[1] != nb:
            raise ValueError(f"port {name}: {data.shape[1]} bytes per cycle, the layout "
                             f"has {nb}")
        rec[:, off:off + nb] = data[:length]
    return rec


def _hex_lines(rec):
    """Records -> hex text, one MSB-first word per line."""
    T, nb = rec.shape
    if T == 0:
        return b""
    msb = rec[:, ::-1]
    chars = np.empty((T, 2 * nb + 1), np.uint8)
    chars[:, 0:2 * nb:2] = _HEX[msb >> 4]
    chars[:, 1:2 * nb:2] = _HEX[msb & 15]
    chars[:, -1] = ord("\n")
    return chars.tobytes()


def job_length(job):
    """Cycles of a job of :func:`encode_stream` (records or ``(cycles, chunks)``)."""
    return job.shape[0] if isinstance(job, np.ndarray) else int(job[0])


def encode_stream(path, layout, jobs):
    """Write the stream of ``jobs`` to ``path``. A job is a record array (one record per
    cycle, :func:`records`) or a pair ``(cycles, chunks)``: its cycle count and an
    iterable of record arrays of consecutive cycles, written as they come (memory: one
    chunk). ValueError if the records do not fit the layout or the chunks do not add
    up to the cycles."""
    with open(path, "wb") as f:
        f.write(f"{MAGIC:08x}\n{layout.layout_id:08x}\n{len(jobs):x}\n".encode())
        for j, job in enumerate(jobs):
            length = job_length(job)
            f.write(f"{length:x}\n".encode())
            chunks = [job] if isinstance(job, np.ndarray) else job[1]
            done = 0
            for rec in chunks:
                if rec.ndim != 2 or rec.shape[1] != layout.record_bytes:
                    raise ValueError(f"records of {rec.shape[-1]} bytes; the layout has "
                                     f"{layout.record_bytes}")
                step = 1 << 16
                for i in range(0, rec.shape[0], step):
                    f.write(_hex_lines(rec[i:i + step]))
                done += rec.shape[0]
            if done != length:
                raise ValueError(f"job {j}: chunks of {done} cycles in all, the job has "
                                 f"{length}")


def _lanes(hexes, lanes, width, where):
    """Hex words (MSB first) of ``lanes`` x ``width`` bits -> uint64 [n, lanes]."""
    n = len(hexes)
    nbytes = (lanes * width + 7) // 8
    out = np.zeros((n, lanes), np.uint64)
    if n == 0:
        return out
    digits = 2 * nbytes
    try:
        blob = bytes.fromhex("".join(h.rjust(digits, "0") for h in hexes))
    except ValueError:
        bad = next(h for h in hexes if not all(c in "0123456789abcdefABCDEF" for c in h))
        raise StreamError(f"{where}: the simulator wrote {bad!r}, not a hex word "
                          f"(an undefined X/Z output)") from None
    if len(blob) != n * nbytes:
        raise StreamError(f"{where}: a result word is wider than {lanes * width} bits")
    raw = np.frombuffer(blob, np.uint8).reshape(n, nbytes)[:, ::-1]
    if width in (8, 16, 32, 64) and (lanes * width) % 8 == 0:
        dt = np.dtype({8: "<u1", 16: "<u2", 32: "<u4", 64: "<u8"}[width])
        return np.ascontiguousarray(raw).view(dt).reshape(n, lanes).astype(np.uint64)
    weights = (np.uint64(1) << np.arange(width, dtype=np.uint64))
    step = max(1, (1 << 22) // max(1, nbytes * 8))
    for i in range(0, n, step):
        bits = np.unpackbits(raw[i:i + step], axis=1, bitorder="little")
        bits = bits[:, :lanes * width].reshape(-1, lanes, width).astype(np.uint64)
        out[i:i + step] = (bits * weights).sum(axis=2, dtype=np.uint64)
    return out


class _Jobs:
    """Per-job event chunks as they are parsed."""

    def __init__(self, path, layout, jobs):
        self.path, self.npairs, self.jobs = path, len(layout.outputs), jobs
        self.lanes = [L for _, _, L, _ in layout.outputs]
        self.done, self.ready, self.parts = 0, [], [[] for _ in layout.outputs]

    def add(self, pair, t, lane, value):
        if len(t):
            self.parts[pair].append((t.astype(np.int64), lane.astype(np.int64),
                                     value.astype(np.uint64)))

    def end(self, job, seconds, cpu_seconds, where):
        if job != self.done:
            raise StreamError(f"{where}: job {job} ends, expected job {self.done}")
        trace = {"seconds": seconds, "cpu_seconds": cpu_seconds}
        for i, parts in enumerate(self.parts):
            trace[f"events_{i}"] = tuple(
                np.concatenate([p[k] for p in parts]) if parts else
                np.zeros(0, np.uint64 if k == 2 else np.int64) for k in range(3))
        self.done += 1
        self.ready.append(trace)
        self.parts = [[] for _ in range(self.npairs)]

    def take(self):
        """The jobs that ended since the last call (each handed out once)."""
        ready, self.ready = self.ready, []
        return ready

    def check(self):
        if self.done != self.jobs or any(self.parts):
            raise StreamError(f"{self.path}: results of {self.done} job(s), expected "
                              f"{self.jobs} (the simulator stopped early)")


def decode_results(path, layout, jobs):
    """Read a result file (binary events or text lines, see the module docstring): per
    job a dict with ``events_i`` = ``(t, lane, raw value)`` arrays for output pair i,
    ``seconds`` and ``cpu_seconds`` (-1 when the player did not time it). StreamError
    if the file is cut short or malformed. Every job's events at once: see
    :func:`iter_results` to take them job by job."""
    return list(iter_results(path, layout, jobs))


def iter_results(path, layout, jobs):
    """:func:`decode_results` job by job: yields each job's dict as soon as its end
    record is read, so only one job's events are held at a time (beyond a read chunk).
    The StreamError of a file with fewer jobs comes after the jobs it holds."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise StreamError(f"{path}: cannot read the simulator's results: "
                          f"{e.strerror or e}") from None
    with f:
        acc = _Jobs(path, layout, jobs)
        if f.read(len(RESULTS_MAGIC)) == RESULTS_MAGIC:
            yield from _binary(f, acc)
        else:
            f.seek(0)
            yield from _text(f, layout, acc)
        acc.check()


def _records(f, count, where):
    data = f.read(count * EVENT_DTYPE.itemsize)
    if len(data) % EVENT_DTYPE.itemsize:
        raise StreamError(f"{where}: the results end inside a record (cut short)")
    return np.frombuffer(data, EVENT_DTYPE)


def _binary(f, acc):
    while len(ev := _records(f, _CHUNK, acc.path)):
        kind = ev["kind"]
        if np.any(kind > 2) or np.any(ev["pair"][kind == 0] >= acc.npairs):
            raise StreamError(f"{acc.path}: a result record of an unknown kind or output "
                              f"(not this design's results)")
        start = 0
        for k in (*np.flatnonzero(kind == 1).tolist(), len(ev)):
            seg = ev[start:k]
            seg = seg[seg["kind"] == 0]
            for i in range(acc.npairs):
                sel = seg[seg["pair"] == i]
                if len(sel) and int(sel["lane"].max()) >= acc.lanes[i]:
                    raise StreamError(f"{acc.path}: a result on lane "
                                      f"{int(sel['lane'].max())} of output pair {i}, "
                                      f"which has {acc.lanes[i]} lanes")
                acc.add(i, sel["t"], sel["lane"], sel["value"])
            if k == len(ev):
                break
            cpu = ev[k + 1:k + 2] if k + 1 < len(ev) else _records(f, 1, acc.path)
            if not len(cpu) or cpu["kind"][0] != 2 or cpu["t"][0] != ev["t"][k]:
                raise StreamError(f"{acc.path}: job {int(ev['t'][k])} ends without its "
                                  f"CPU time record")
            acc.end(int(ev["t"][k]), int(ev["value"][k]) * 1e-9, int(cpu["value"][0]) * 1e-9,
                    acc.path)
            yield from acc.take()
            start = k + 2


def _text(f, layout, acc):
    rows, lineno = [], 0

    def flush():
        if not rows:
            return
        cycles = np.array([int(r[1]) for r in rows], np.int64)
        for i, (_, _, L, W) in enumerate(layout.outputs):
            where = f"{acc.path} job {acc.done}"
            valid = _lanes([r[2 + 2 * i] for r in rows], L, 1, where).astype(bool)
            values = _lanes([r[3 + 2 * i] for r in rows], L, W, where)
            n, lane = np.nonzero(valid)
            acc.add(i, cycles[n], lane, values[n, lane])
        rows.clear()

    for line in f:
        lineno += 1
        parts = line.decode(errors="replace").split()
        if not parts:
            continue
        if parts[0] == "R" and len(parts) == 2 + 2 * acc.npairs:
            rows.append(parts)
            if len(rows) >= (1 << 14):
                flush()
        elif parts[0] == "E" and len(parts) == 4:
            flush()
            acc.end(int(parts[1]), float(parts[2]), float(parts[3]), f"{acc.path}:{lineno}")
            yield from acc.take()
        else:
            raise StreamError(f"{acc.path}:{lineno}: not a result line: {line[:60]!r}")
    flush()
