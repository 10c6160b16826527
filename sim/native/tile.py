"""The tile's native path: host programs played by a Verilator harness that drives only
the tile's host port (``tile_harness.cpp``).

A program is the list of steps :mod:`sim.drivers.tile` makes for the cocotb bench
(:mod:`sim.tb.tile`): WRITE steps (LOAD A, B, C), GEMM commands, READ steps (STORE C).
Here they go to a *host stream* (hex tokens, one per line, the header of
:mod:`sim.native.stream`: magic, layout id, then steps): a WRITE or READ step as
bursts of consecutive addresses of one bank (its transactions sorted by memory, bank
and address first: they commute; the words read are put back in the step's order), a
GEMM as its command fields. The harness plays each step as the cocotb bench does (one
transaction per cycle, the command, then clock edges until ``done`` rises) and writes
back only what the host sees: the words it READ, each GEMM's cycles, error flag and
code and access counters. So a long GEMM costs its operands and results in the stream
and nothing per cycle of its run.

The player is built by :func:`sim.native.build.build_player` (cached under
``build/native/<tile slug>_verilator_<model>``, the arrays' flags per model); ``model
"twin"`` builds the tile around the array with the behavioural MAC, only after its
proof (:func:`sim.native.run.design_for`).
"""
import dataclasses
import re
import shutil
import tempfile
from importlib import resources
from pathlib import Path

import numpy as np

from amaranth.hdl import Shape
from amaranth.lib.wiring import Flow

from hdl.cache import Cache, generator_fingerprint, resolve_cache
from hdl.tile import TILE_TOP, TileConfig, tile_verilog
from hdl.tile.host import host_ports
from sim.runner import SimulationError
from .build import DEFAULT_NATIVE_ROOT, build_player, run_player
from .run import design_for
from .stream import MAGIC, Layout, StreamError

__all__ = ["tile_layout", "tile_design", "native_verilog", "compact_zero_init",
           "encode_host_stream", "decode_host_results", "run_program_native", "HOST_PORTS",
           "RESULTS_MAGIC"]

#: The host port's transaction inputs; every other input is a GEMM command field.
HOST_PORTS = ("host_valid", "host_op", "host_mem", "host_bank", "host_addr", "host_wdata")
RESULTS_MAGIC = b"SYSTHST1"
_OPS = {"write": 1, "read": 2, "gemm": 3}


def _ports(cfg):
    """``{name: ("in" or "out", bits)}`` of the tile's host interface."""
    return {name: ("in" if member.flow is Flow.In else "out", Shape.cast(member.shape).width)
            for name, member in host_ports(cfg).items()}


def _fields(cfg):
    """``[(name, bits)]`` of the GEMM command fields (sorted by name)."""
    return sorted((n, w) for n, (d, w) in _ports(cfg).items()
                  if d == "in" and n not in HOST_PORTS)


def _counters(cfg):
    return sorted(n for n, (d, _) in _ports(cfg).items() if d == "out" and
                  n.startswith("cnt_"))


def tile_layout(cfg: TileConfig):
    """The :class:`~sim.native.stream.Layout` of the tile's host port; its id (in
    every host stream) also covers the tile's slug, since tiles with the same ports
    lay their data out differently: a stream for another tile is refused."""
    ports = _ports(cfg)
    ins = [(n, w) for n, (d, w) in ports.items() if d == "in"]
    outs = [("done", n, 1, w) for n, (d, w) in sorted(ports.items()) if d == "out"]
    return Layout.of(TILE_TOP, ins, [*outs, ("design", cfg.slug, 0, 0)])


def _rdata_bits(cfg):
    return _ports(cfg)["host_rdata"][1]


def _ports_header(cfg):
    layout = tile_layout(cfg)
    wbits = _ports(cfg)["host_wdata"][1]
    rbits = _rdata_bits(cfg)
    return "\n".join([
        "// written by sim.native.tile; do not edit",
        f"#define SYSTOLIC_LAYOUT {layout.layout_id}u",
        f"#define TILE_WDATA_BITS {wbits}",
        f"#define TILE_WDATA_BYTES {(wbits + 7) // 8}",
        f"#define TILE_RDATA_BITS {rbits}",
        f"#define TILE_RDATA_WORDS {(rbits + 63) // 64}",
        "#define TILE_FIELDS(X) " + " ".join(f"X({n}, {w}, {(w + 7) // 8})"
                                             for n, w in _fields(cfg)),
        "#define TILE_COUNTERS(X) " + " ".join(f"X({n})" for n in _counters(cfg))]) + "\n"


_ZERO_INIT = re.compile(r"^  initial begin\n((?:    ([A-Za-z_][A-Za-z0-9_]*)\[\d+\] = "
                        r"\d+'[hdb]0+;\n)+)  end\n", re.M)


def compact_zero_init(verilog):
    """``verilog`` with every memory's word-by-word zero ``initial`` block (Amaranth
    writes one line per word: 17 MB of text for a tile with 32768-word banks, which
    Verilator parses for minutes) written as one loop that sets the same zeros."""
    def loop(m):
        name = m.group(2)
        lines = m.group(1).splitlines()
        if any(not line.startswith(f"    {name}[{i}] = ") for i, line in enumerate(lines)):
            return m.group(0)           # not one whole memory in order: keep it
        i = f"{name}__init"
        return (f"  integer {i};\n  initial for ({i} = 0; {i} < {len(lines)}; {i} = {i} + 1)"
                f" {name}[{i}] = 0;\n")
    return _ZERO_INIT.sub(loop, verilog)


def native_verilog(cfg: TileConfig, *, cache=True):
    """:func:`hdl.tile.tile_verilog` of ``cfg`` with :func:`compact_zero_init`,
    remembered in ``cache`` (kind ``tile_native``, :func:`hdl.cache.resolve_cache`),
    keyed by the config and :func:`hdl.cache.generator_fingerprint`: Amaranth takes
    minutes to write the tiles with deep banks (every word's init), and the native
    path would do it on every run before it finds its cached player."""
    store = resolve_cache(cache)
    key = Cache.key(generator=generator_fingerprint(), config=repr(cfg))
    text = store.load_text("tile_native", key, ".v") if store else None
    if text is None:
        text = compact_zero_init(tile_verilog(cfg))
        if store:
            store.store_text("tile_native", key, ".v", text)
    return text


def tile_design(cfg: TileConfig, model="gate"):
    """``(tile config to build, twin proof or None)``: the twin's tile is ``cfg`` with
    the array's behavioural MAC, once proven equal (:func:`sim.native.run.design_for`)."""
    array, proof = design_for(cfg.array, model)
    return dataclasses.replace(cfg, array=array), proof


def _bursts(mem, bank, addr, *data):
    """Runs of consecutive addresses of one (mem, bank): ``[(mem, bank, addr0, count,
    start index)]``."""
    out = []
    for i, (m, b, a) in enumerate(zip(mem, bank, addr)):
        if out and out[-1][:2] == (m, b) and out[-1][2] + out[-1][3] == a:
            m0, b0, a0, c, s = out[-1]
            out[-1] = (m0, b0, a0, c + 1, s)
        else:
            out.append((m, b, a, 1, i))
    return out


def _order(step):
    """A WRITE or READ step's transactions sorted by (mem, bank, addr), stably: they
    commute (a READ changes nothing; WRITEs to one address keep their order), and
    sorted they form long bursts whatever the layout (the results are put back in the
    step's order)."""
    mem, bank, addr = (list(map(int, step[k])) for k in ("mem", "bank", "addr"))
    return sorted(range(len(addr)), key=lambda i: (mem[i], bank[i], addr[i]))


def _check_step(step, bits):
    if "sub" in step:
        raise ValueError("the native tile player drives one tile (no host_sub); run the "
                         "split tile on the cocotb path")
    if step["op"] not in _OPS:
        raise ValueError(f"unknown step {step['op']!r}")
    for name in ("mem", "bank", "addr", "data"):
        values = step.get(name, ())
        if any(int(v) < 0 for v in values):
            raise ValueError(f"a {step['op']} step has a negative {name}")
    if any(int(v) >> bits for v in step.get("data", ())):
        raise ValueError(f"a WRITE word is wider than host_wdata ({bits} bits)")


def encode_host_stream(path, cfg: TileConfig, steps):
    """Write the host stream of ``steps`` (:mod:`sim.tb.tile`'s step dicts) to
    ``path``; ValueError if a step cannot be played by the native player."""
    layout = tile_layout(cfg)
    fields = _fields(cfg)
    wbits = _ports(cfg)["host_wdata"][1]
    for step in steps:
        _check_step(step, wbits)
    with open(path, "w") as f:
        f.write(f"{MAGIC:08x}\n{layout.layout_id:08x}\n{len(steps):x}\n")
        for step in steps:
            op = step["op"]
            f.write(f"{_OPS[op]:x}\n")
            if op == "gemm":
                given = step["fields"]
                unknown = set(given) - {n for n, _ in fields}
                if unknown:
                    raise ValueError(f"GEMM fields this tile does not have: "
                                     f"{', '.join(sorted(unknown))}")
                f.write(f"{int(bool(step.get('poke'))):x}\n"
                        f"{int(step.get('timeout', 10_000_000)):x}\n")
                for name, bits in fields:
                    value = int(given.get(name, 0))
                    if not 0 <= value < (1 << bits):
                        raise ValueError(f"GEMM field {name} = {value} does not fit its "
                                         f"{bits} bits")
                    f.write(f"{value:x}\n")
                continue
            mem, bank, addr = (list(map(int, step[k])) for k in ("mem", "bank", "addr"))
            order = _order(step)
            mem, bank, addr = ([x[i] for i in order] for x in (mem, bank, addr))
            if op == "write":
                data = [int(step["data"][i]) for i in order]
            runs = _bursts(mem, bank, addr)
            f.write(f"{len(runs):x}\n")
            for m, b, a, count, start in runs:
                f.write(f"{m:x}\n{b:x}\n{a:x}\n{count:x}\n")
                if op == "write":
                    f.write("".join(f"{v:x}\n" for v in data[start:start + count]))


def decode_host_results(path, cfg: TileConfig, steps):
    """The records of :mod:`sim.tb.tile` (one per step) from the harness's results, and
    the wall and CPU seconds of the GEMMs' cycles. StreamError if the file is short or
    not this player's."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise StreamError(f"{path}: cannot read the player's results: "
                          f"{e.strerror or e}") from None
    if raw[:len(RESULTS_MAGIC)] != RESULTS_MAGIC or (len(raw) - len(RESULTS_MAGIC)) % 8:
        raise StreamError(f"{path}: not the tile player's results")
    words = np.frombuffer(raw, "<u8", offset=len(RESULTS_MAGIC))
    rwords = (_rdata_bits(cfg) + 63) // 64
    counters = _counters(cfg)
    at, out, seconds, cpu = 0, [], 0.0, 0.0

    def take(n):
        nonlocal at
        if at + n > len(words):
            raise StreamError(f"{path}: the results end early (the player stopped)")
        at += n
        return words[at - n:at]

    for step in steps:
        op = step["op"]
        if op == "read":
            n = len(step["addr"])
            block = take(n * rwords).reshape(n, rwords)
            played = [sum(int(w) << (64 * i) for i, w in enumerate(row)) for row in block] \
                if rwords > 1 else block[:, 0].tolist()
            data = [0] * n
            for i, value in zip(_order(step), played):
                data[i] = value
            err, code = take(2)
            out.append({"op": op, "data": data, "error": int(err), "err_code": int(code)})
        elif op == "write":
            err, code = take(2)
            out.append({"op": op, "error": int(err), "err_code": int(code)})
        else:
            cycles, err, code = take(3)
            rec = {"op": op, "cycles": int(cycles), "error": int(err),
                   "err_code": int(code)}
            rec |= {n: int(v) for n, v in zip(counters, take(len(counters)))}
            wall, c = take(2)
            seconds, cpu = seconds + wall * 1e-9, cpu + c * 1e-9
            out.append(rec)
    if at != len(words):
        raise StreamError(f"{path}: {len(words) - at} result words past the last step")
    return out, seconds, cpu


def _harness(cfg):
    return {"tile_harness.cpp": resources.files("sim.native").joinpath(
        "tile_harness.cpp").read_text(), "systolic_ports.h": _ports_header(cfg)}


def run_program_native(steps, cfg: TileConfig, *, model="gate", build_root=None,
                       save_stream=None):
    """Play host ``steps`` (as :func:`sim.drivers.tile.run_program`) on the tile's native
    player (Verilator); returns ``(records, info)``: the records of :mod:`sim.tb.tile`
    and a dict with ``build`` (:class:`~sim.native.build.NativeBuild`), ``proof``,
    ``seconds`` / ``cpu_seconds`` (the player process), ``gemm_seconds`` /
    ``gemm_cpu_seconds`` (the GEMMs' cycles only) and ``stream_bytes``."""
    design, proof = tile_design(cfg, model)
    root = Path(build_root) if build_root is not None else DEFAULT_NATIVE_ROOT
    build = build_player(native_verilog(design), tile_layout(design), design.slug,
                         "verilator", model=model, build_root=root,
                         harness=_harness(design))
    runs = build.directory / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=runs, prefix="run-"))
    try:
        stream, results = work / "host.hex", work / "results.bin"
        encode_host_stream(stream, design, steps)
        size = stream.stat().st_size
        if save_stream is not None:
            from .run import _copy_atomic
            _copy_atomic(stream, save_stream)
        try:
            seconds, cpu = run_player(build, stream, results)
        except SimulationError as e:
            raise SimulationError(f"the tile's native player failed: {e}") from None
        records, gemm_s, gemm_cpu = decode_host_results(results, design, steps)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return records, {"build": build, "proof": proof, "seconds": seconds,
                     "cpu_seconds": cpu, "gemm_seconds": gemm_s,
                     "gemm_cpu_seconds": gemm_cpu, "stream_bytes": size}
