"""cocotb bench for ``systolic_array``: plays GEMM schedules made by :mod:`sim.drivers.gemm`.

The environment variable ``SYSTOLIC_ARRAY_JOBS`` names a JSON file::

    {"acc_width": W, "out_lanes": L,
     "jobs": [{"input": "<job>_in.npz", "output": "<job>_out.npz", "length": T}, ...]}

Each input ``.npz`` holds, per input port of the DUT, a ``uint8 [T, bytes]`` array: the
port's value in each cycle as little-endian bytes. For every job the bench holds ``rst``
for two cycles (all inputs 0), then plays cycles 0..T-1 on a 10 ns clock: the bench acts
at each falling edge, 5 ns before the next rising edge: it reads the outputs the previous
rising edge produced, then writes the inputs the next one samples. It writes ``cycles`` (int64:
cycle t whose edge
produced the row), ``valid`` (uint8 [n, L]) and ``values`` (uint64 [n, L]: W-bit lanes
of ``c_out``) for every cycle with some ``c_valid`` bit set, plus ``seconds`` (wall
time of the T cycles) and ``cpu_seconds`` (CPU time of the simulator process in them).

Speed (this loop runs once per simulated cycle, so every call in it counts):

* the clock is cocotb's C++ (GPI) clock: no Python runs on clock edges;
* one ``await`` per cycle, on one pre-built :class:`~cocotb.triggers.Timer`;
* each input port is written as ONE packed integer (or bit string, above 32 bits)
  straight through the simulator handle with an immediate (no-delay) write, and only in
  cycles where its value changes; the per-cycle (setter, value) lists are built before
  the timed loop;
* ``c_valid`` is read every cycle (so unexpected results are still caught) as one bit
  string, and ``c_out`` only in cycles where some ``c_valid`` bit is set; lanes are
  split after the loop.

Immediate writes are safe here: in the timestep where the bench writes only the falling
edge happens, and the design samples its inputs on rising edges only.
"""
import json
import os
import time
from functools import partial

import numpy as np

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import Timer

JOBS_ENV = "SYSTOLIC_ARRAY_JOBS"
PERIOD_NS = 10
_NO_DELAY = 3                # cocotb.handle._GPISetAction.NO_DELAY (immediate write)


def _save(path, **arrays):
    tmp = f"{path}.tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def _setter(handle):
    """``(set(value), to_sim(int))`` writing ``handle`` immediately, bypassing cocotb's
    write scheduling (one simulator call per write)."""
    raw = handle._handle
    width = len(handle)
    if width <= 32:
        return partial(raw.set_signal_val_int, _NO_DELAY), int
    fmt = f"0{width}b"
    return partial(raw.set_signal_val_binstr, _NO_DELAY), lambda v: format(v, fmt)


def _changes(data, names, setters, T):
    """Per cycle, the list of ``(setter, value)`` writes (ports whose value changes)."""
    per_cycle = [[] for _ in range(T)]
    for name, (setter, conv) in zip(names, setters):
        rows = data[name]
        words = [int.from_bytes(row.tobytes(), "little") for row in rows]
        prev = 0                                   # reset leaves every input at 0
        for t, w in enumerate(words[:T]):
            if w != prev:
                per_cycle[t].append((setter, conv(w)))
                prev = w
    return per_cycle


def _lanes(words, width, lanes):
    """Split packed ``lanes`` x ``width``-bit integers into a uint64 [n, lanes] array."""
    out = np.zeros((len(words), lanes), np.uint64)
    if not words:
        return out
    if width in (8, 16, 32, 64):
        nbytes = width * lanes // 8
        buf = b"".join(w.to_bytes(nbytes, "little") for w in words)
        dtype = {8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}[width]
        return np.frombuffer(buf, dtype=np.dtype(dtype).newbyteorder("<")).reshape(
            len(words), lanes).astype(np.uint64)
    mask = (1 << width) - 1
    for n, w in enumerate(words):
        out[n] = [(w >> (width * i)) & mask for i in range(lanes)]
    return out


async def start_clock(dut):
    """Start the GPI clock. It starts low at time s, rises at s + 5 + 10k and falls at
    s + 10k; the bench acts at s + 10k, in the timestep of a falling edge (which changes
    nothing), so the simulator evaluates the design twice per cycle, not three times."""
    dut.clk.value = 0
    await Timer(1, unit="ns")
    Clock(dut.clk, PERIOD_NS, unit="ns", impl="gpi").start(start_high=False)


def _prepare(dut, input_path, T, outputs):
    """Setters, per-cycle writes, output readers and empty records of one schedule."""
    with np.load(input_path) as data:
        names = sorted(data.files)
        setters = [_setter(getattr(dut, name)) for name in names]
        per_cycle = _changes(data, names, setters, T)
    reads = [(getattr(dut, v)._handle.get_signal_val_binstr,
              getattr(dut, o)._handle.get_signal_val_binstr) for v, o, _, _ in outputs]
    return setters, per_cycle, reads, [([], [], []) for _ in outputs]


def _records(outputs, rec):
    """Per output i: ``cycles_i``, ``valid_i`` (uint8 [n, L]), ``values_i`` (uint64)."""
    arrays = {}
    for i, ((_, _, L, W), (cyc, vw, ow)) in enumerate(zip(outputs, rec)):
        arrays[f"cycles_{i}"] = np.array(cyc, dtype=np.int64)
        arrays[f"valid_{i}"] = np.array([[int(b) for b in reversed(v)] for v in vw],
                                        dtype=np.uint8).reshape(len(cyc), L)
        arrays[f"values_{i}"] = _lanes([int(w, 2) for w in ow], W, L)
    return arrays


def load_spec(env):
    """The JSON spec whose path the environment variable ``env`` names (set by the
    bench's driver)."""
    spec_path = os.environ.get(env)
    if not spec_path:
        raise RuntimeError(f"{env} is not set; run this bench through its driver")
    with open(spec_path) as f:
        return json.load(f)


def player(env, items, outputs_of, save, name):
    """A cocotb test that plays every schedule listed in the JSON file named by the
    environment variable ``env`` (its list ``items``), each after a two-cycle reset (all
    inputs 0): ``outputs_of(spec)`` gives ``[(valid_name, out_name, lanes, width)]``,
    ``save(dut, item, arrays, seconds, cpu_seconds)`` stores one result. The per-cycle
    loop is written out here, in the test coroutine itself: awaiting the clock from a
    nested coroutine costs a tenth of the speed."""
    async def run(dut):
        spec = load_spec(env)
        outputs = outputs_of(spec)
        rst_set, _ = _setter(dut.rst)
        step = Timer(PERIOD_NS, unit="ns")
        await start_clock(dut)
        for item in spec[items]:
            T = int(item["length"])
            setters, per_cycle, reads, rec = _prepare(dut, item["input"], T, outputs)
            for setter, conv in setters:
                setter(conv(0))
            rst_set(1)
            await step
            await step
            rst_set(0)
            t0, c0 = time.perf_counter(), time.process_time()
            if len(reads) == 1:       # the plain array: no inner loop per cycle
                (read_v, read_o), (cyc, vw, ow) = reads[0], rec[0]
                for t in range(T):
                    for setter, value in per_cycle[t]:
                        setter(value)
                    await step
                    v = read_v()
                    if "1" in v:
                        cyc.append(t)
                        vw.append(v)
                        ow.append(read_o())
            else:
                for t in range(T):
                    for setter, value in per_cycle[t]:
                        setter(value)
                    await step
                    for (read_v, read_o), (cyc, vw, ow) in zip(reads, rec):
                        v = read_v()
                        if "1" in v:
                            cyc.append(t)
                            vw.append(v)
                            ow.append(read_o())
            seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
            save(dut, item, _records(outputs, rec), seconds, cpu_seconds)
    run.__name__ = run.__qualname__ = name
    return run


def _save_job(dut, job, arrays, seconds, cpu_seconds):
    _save(job["output"], cycles=arrays["cycles_0"], valid=arrays["valid_0"],
          values=arrays["values_0"], seconds=np.array(seconds),
          cpu_seconds=np.array(cpu_seconds))
    T = int(job["length"])
    dut._log.info("job: %d cycles in %.2fs (%.0f cycles/s)", T, seconds,
                  T / seconds if seconds else 0.0)


run_jobs = cocotb.test()(player(
    JOBS_ENV, "jobs",
    lambda spec: [("c_valid", "c_out", int(spec["out_lanes"]), int(spec["acc_width"]))],
    _save_job, "run_jobs"))
