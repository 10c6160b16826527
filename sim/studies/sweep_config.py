"""The config of ``systolic sweep`` and the jobs it expands to.

``systolic sweep``: a design-space sweep from a small config file, run in parallel
and cached.

A config (TOML, or the same structure as JSON) names up to four *studies*; each key of a
study is a value or a list of values, and the study runs every combination (the
Cartesian product)::

    [sweep]                       # optional
    liberty = "nangate45"         # or a path to a .lib, or false (no standard cells)
    device = "up5k"               # iCE40 for place and route ("up5k" or "hx8k")

    [mac]                         # depth / Fmax against pipeline, per architecture
    multiplier = ["dadda", "booth"]
    adder = ["ripple", "kogge-stone"]
    pipeline = [0, 1, 2]
    fpga = true                   # also place and route (iCE40 Fmax)

    [array]                       # area per MAC against array size
    size = [1, 2, 4, 8]           # square arrays
    dataflow = ["ws", "os"]
    numerics = ["int4", "fp4"]    # operand formats (hdl.numerics; default int4)
    precision = ["int4", "w4a8"]  # run-time precision (hdl.fusion; default int4)

    [split]                       # split-logic overhead against tile size
    size = [8]
    tile = [2, 4]
    style = ["mux", "ports"]

    [gemm]                        # utilization against GEMM shape: split vs whole
    size = [16]
    tile = [8]
    shapes = [[8, 8, 8], [16, 16, 16], [64, 16, 8]]
    batch = [4]                   # independent GEMMs of that shape
    precision = ["int4", "int8"]  # W4A8 / int8: on the whole array fused for it
    acc_width = [32]              # accumulator bits (int8 wants >= 24; default 16)

Keys and defaults are in :data:`SCHEMA`. Every MAC key (``numerics``, ``multiplier``,
``adder``, ``pipeline``, ``fused``, ``acc_width``; ``signed`` is the old name of
``numerics`` int4/uint4, never both) may appear in ``mac``, ``array`` and ``split``;
``gemm`` takes ``pipeline`` and ``acc_width`` (its cycle models do not depend on the
numerics).

``multiplier`` defaults to ``"default"``, each numerics' own default architecture; an
FP4-only one (``shift``) is skipped for the integer numerics of the same study. A job's
``mac`` always names its ``numerics``, so the result cache keeps the formats apart.
The shipped default is :data:`DEFAULT_CONFIG` (``sim/studies/sweep_default.toml``).

``precision`` (:data:`hdl.fusion.PRECISIONS`, default ``int4``) is a key of ``array``
and ``gemm``: ``w4a8`` (int8 activations x int4 weights) and ``int8`` run on an int4
array fused for them (``ArrayConfig.fusion``, :mod:`hdl.fusion`): the array study
measures the fused array (and its peak MACs per cycle in that precision, one MAC per
2 or 4 PE steps), the gemm study its cycle model (the whole array only: the splittable
array is not fused). A combination that cannot run it (numerics other than int4; a WS
array with fewer rows than the precision's digit steps) is skipped, and a precision no
combination can run is refused. An int4 job's dict does not name its precision (its
cache key is the same whether the config lists the axis or not).
"""
import itertools
import json
import tomllib
from pathlib import Path

from hdl.flows.fpga import DEVICES
from hdl.fusion import PRECISIONS
from hdl.mac import (MacConfig, ConfigError, ALL_MULTIPLIERS, ADDER_CHOICES, ACC_WIDTHS,
                     DEFAULT_MULTIPLIER, FP4_MULTIPLIERS, PIPELINES)
from hdl.numerics import NUMERICS, is_signed

__all__ = ["SweepConfigError", "SCHEMA", "STUDIES", "DEFAULT_CONFIG", "OVERRIDES",
           "parse_config", "load_config", "apply_overrides", "expand"]

DEFAULT_CONFIG = Path(__file__).with_name("sweep_default.toml")
STUDIES = ("mac", "array", "split", "gemm")


class SweepConfigError(ValueError):
    """A bad sweep config or option: one line, exit status 2."""


# ---------------------------------------------------------------------------------------
# Config schema

def _bool(v):
    if not isinstance(v, bool):
        raise ValueError(f"{v!r} is not true or false")
    return v


def _choice(allowed):
    def check(v):
        if v not in allowed:
            raise ValueError(f"{v!r} is not allowed; allowed: {', '.join(allowed)}")
        return v
    return check


def _int_range(lo, hi):
    def check(v):
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"{v!r} is not an integer; allowed: {lo}..{hi}")
        if not lo <= v <= hi:
            raise ValueError(f"{v} is out of range; allowed: {lo}..{hi}")
        return v
    return check


def _shape(v):
    if isinstance(v, str):
        try:
            v = [int(x) for x in v.lower().split("x")]
        except ValueError:
            raise ValueError(f"{v!r} is not a shape M x K x N such as 16x16x16") from None
    if (not isinstance(v, (list, tuple)) or len(v) != 3
            or any(isinstance(x, bool) or not isinstance(x, int) or not 1 <= x <= 4096
                   for x in v)):
        raise ValueError(f"{v!r} is not a shape [M, K, N] of integers 1..4096")
    return list(v)


LIST, ONE = "list", "one"
#: ``multiplier = "default"``: the default architecture of each numerics
#: (:data:`hdl.mac.DEFAULT_MULTIPLIER`: dadda for int4/uint4, shift for fp4).
DEFAULT = "default"
_MAC_KEYS = {
    "numerics": (LIST, _choice(NUMERICS), None),        # None: follows ``signed``
    "multiplier": (LIST, _choice((DEFAULT, *ALL_MULTIPLIERS)), [DEFAULT]),
    "adder": (LIST, _choice(ADDER_CHOICES), ["ripple"]),
    "pipeline": (LIST, _int_range(PIPELINES.start, PIPELINES.stop - 1), [0]),
    "fused": (LIST, _bool, [True]),
    "signed": (LIST, _bool, [True]),                    # old name: int4 (true), uint4
    "acc_width": (LIST, _int_range(ACC_WIDTHS.start, ACC_WIDTHS.stop - 1), [16]),
}
#: study -> key -> (LIST or ONE, checker, default).
SCHEMA = {
    "sweep": {"liberty": (ONE, lambda v: v if v is False or isinstance(v, str) else
                          _choice(["nangate45"])(v), "nangate45"),
              "device": (ONE, _choice(DEVICES), "up5k")},
    "mac": {**_MAC_KEYS, "pipeline": (LIST, _MAC_KEYS["pipeline"][1], [0, 1, 2]),
            "liberty": (ONE, _bool, True), "fpga": (ONE, _bool, False),
            "energy": (ONE, _bool, False)},
    "array": {**_MAC_KEYS, "size": (LIST, _int_range(1, 64), [2, 4]),
              "dataflow": (LIST, _choice(("ws", "os")), ["ws"]),
              "precision": (LIST, _choice(PRECISIONS), ["int4"]),
              "liberty": (ONE, _bool, True), "fpga": (ONE, _bool, False),
              "energy": (ONE, _bool, False)},
    "split": {**_MAC_KEYS, "size": (LIST, _int_range(2, 64), [8]),
              "tile": (LIST, _int_range(1, 64), [2, 4]),
              "style": (LIST, _choice(("mux", "ports")), ["mux"])},
    "gemm": {"size": (LIST, _int_range(1, 256), [16]),
             "tile": (LIST, _int_range(1, 256), [8]),
             "shapes": (LIST, _shape, [[16, 16, 16]]),
             "batch": (LIST, _int_range(1, 64), [4]),
             "pipeline": (LIST, _MAC_KEYS["pipeline"][1], [0]),
             "precision": (LIST, _choice(PRECISIONS), ["int4"]),
             "acc_width": (LIST, _MAC_KEYS["acc_width"][1], [16])},
}


def parse_config(data, source="config"):
    """Check a config dict (see the module docstring) and fill in the defaults: returns
    ``{"sweep": {...}, study: {key: value or [values]}}`` for the studies present.
    :class:`SweepConfigError` (one line, naming ``source`` and the key) on bad input."""
    def fail(msg):
        raise SweepConfigError(f"sweep {source}: {msg}")
    if not isinstance(data, dict):
        fail("the top level must be a table of studies")
    unknown = [k for k in data if k not in SCHEMA]
    if unknown:
        fail(f"unknown section [{unknown[0]}]; allowed: {', '.join(SCHEMA)}")
    if not any(k in data for k in STUDIES):
        fail(f"no study; give at least one of [{'], ['.join(STUDIES)}]")
    out = {}
    for section, keys in SCHEMA.items():
        if section != "sweep" and section not in data:
            continue
        given = data.get(section, {})
        if not isinstance(given, dict):
            fail(f"[{section}] must be a table")
        bad = [k for k in given if k not in keys]
        if bad:
            fail(f"[{section}] unknown key {bad[0]!r}; allowed: {', '.join(keys)}")
        if "numerics" in given and "signed" in given:
            fail(f"[{section}] give numerics or signed, not both (signed = true is "
                 f"numerics int4, false is uint4)")
        values = {}
        for key, (kind, check, default) in keys.items():
            if key == "signed":
                continue                                    # folded into numerics
            v, shown = given.get(key, default), key
            if key == "numerics" and key not in given:      # the old key decides
                v, shown = given.get("signed", [True]), "signed"
                check = numerics_of_signed
            try:
                if kind == LIST:
                    items = v if isinstance(v, list) and not (
                        key == "shapes" and v and isinstance(v[0], int)) else [v]
                    if not items:
                        raise ValueError("the list is empty; give at least one value")
                    v = [check(x) for x in items]
                else:
                    v = check(v)
            except ValueError as e:
                fail(f"[{section}] {shown}: {e}")
            values[key] = v
        out[section] = values
    expand(out, source)                  # every combination must make a valid design
    return out


def numerics_of_signed(value):
    """The old ``signed`` key as a numerics name."""
    return "int4" if _bool(value) else "uint4"


def load_config(path):
    """Read and check a ``.toml`` or ``.json`` sweep config."""
    path = Path(path)
    if path.suffix not in (".toml", ".json"):
        raise SweepConfigError(f"--config: {path} must be a .toml or .json file")
    try:
        text = path.read_text()
    except OSError as e:
        raise SweepConfigError(f"--config: cannot read {path}: {e.strerror}") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, ValueError) as e:
        kind = "TOML" if path.suffix == ".toml" else "JSON"
        raise SweepConfigError(f"--config: {path} is not valid {kind}: "
                               f"{' '.join(str(e).split())}") from None
    return parse_config(data, f"config {path}")


#: Command-line overrides: option -> (config key, the studies it applies to).
OVERRIDES = {
    "sizes": ("size", ("array",)),
    "tiles": ("tile", ("split",)),
    "multiplier": ("multiplier", ("mac", "array", "split")),
    "adder": ("adder", ("mac", "array", "split")),
    "pipeline": ("pipeline", ("mac", "array", "split", "gemm")),
    "dataflow": ("dataflow", ("array",)),
    "shapes": ("shapes", ("gemm",)),
    "numerics": ("numerics", ("mac", "array", "split")),
    "precision": ("precision", ("array", "gemm")),
}


def apply_overrides(raw, overrides, studies=None, fpga=None, liberty=None, energy=None):
    """A raw config dict with command-line values applied: ``overrides`` maps a key of
    :data:`OVERRIDES` to a comma-separated string; ``studies`` keeps only those studies
    (adding any missing one with its defaults); ``fpga``/``liberty``/``energy`` set those
    switches.
    The result still goes through :func:`parse_config`."""
    data = json.loads(json.dumps(raw))
    if studies:
        data = {k: v for k, v in data.items() if k == "sweep" or k in studies}
        for s in studies:
            data.setdefault(s, {})
    for option, text in overrides.items():
        if text is None:
            continue
        key, targets = OVERRIDES[option]
        items = [x.strip() for x in str(text).split(",") if x.strip()]
        if not items:
            raise SweepConfigError(f"--{option}: give a comma-separated list")
        values = [int(x) if key != "shapes" and x.lstrip("-").isdigit() else x
                  for x in items]
        hit = False
        for s in targets:
            if s in data:
                _, check, _ = SCHEMA[s][key]
                try:
                    data[s][key] = [check(v) for v in values]
                    if key == "numerics":
                        data[s].pop("signed", None)         # replaced by the option
                except ValueError as e:
                    raise SweepConfigError(f"--{option}: {e}") from None
                hit = True
        if not hit:
            raise SweepConfigError(f"--{option}: applies to [{'], ['.join(targets)}], "
                                   f"which this sweep does not run")
    for key, value in (("fpga", fpga), ("energy", energy)):
        if value is not None:
            for s in ("mac", "array"):
                if s in data:
                    data[s][key] = value
    if liberty is not None:
        data.setdefault("sweep", {})["liberty"] = False if liberty == "none" else liberty
    return data


# ---------------------------------------------------------------------------------------
# Jobs

def _product(study, keys):
    names = [k for k in keys if k in study]
    for combo in itertools.product(*(study[k] for k in names)):
        yield dict(zip(names, combo))


def _mac_dict(p):
    """The MacConfig keywords of one combination, or None for an FP4-only multiplier
    with integer numerics (skipped: a sweep may cross fp4 and int4 with ``shift``)."""
    mac = {k: p[k] for k in _MAC_KEYS if k in p and k != "signed"}
    mac["signed"] = is_signed(mac["numerics"])
    if mac["multiplier"] == DEFAULT:
        mac["multiplier"] = DEFAULT_MULTIPLIER[mac["numerics"]]
    if mac["multiplier"] in FP4_MULTIPLIERS and mac["numerics"] != "fp4":
        return None
    if mac["multiplier"] == "behavioral":          # adder and fused mean nothing there
        mac.update(adder="ripple", fused=True)
    MacConfig(**mac)
    return mac


def _mac_jobs(s, keys):
    """``(combination, mac dict)`` of a study, FP4-only multipliers without fp4 refused."""
    lonely = [m for m in s["multiplier"] if m in FP4_MULTIPLIERS]
    if lonely and "fp4" not in s["numerics"]:
        raise ConfigError("multiplier", f"{lonely[0]!r} is an FP4 architecture; add fp4 to "
                          f"numerics (now {', '.join(s['numerics'])})")
    for p in _product(s, keys):
        mac = _mac_dict(p)
        if mac is not None:
            yield p, mac


def _fused(rows, cols, dataflow, mac, precision, fold_overlap=False):
    """The :class:`hdl.array.ArrayConfig` that runs ``precision`` (fused for it unless
    int4), or None if none can (numerics other than int4, WS rows < digit steps)."""
    from hdl.array import ArrayConfig
    from sim.drivers.fusion import check_precision
    fusion = "none" if precision == "int4" else precision
    if fusion != "none" and mac["numerics"] != "int4":
        return None
    cfg = ArrayConfig(rows, cols, dataflow, MacConfig(**mac), fold_overlap=fold_overlap,
                      fusion=fusion)
    try:
        check_precision(precision, cfg)
    except ValueError:
        return None
    return cfg


def _precision_jobs(study, combos):
    """The combinations that can run their precision; ConfigError for a precision none
    of them can run."""
    ran = set()
    for p, cfg in combos:
        if cfg is not None:
            ran.add(p["precision"])
            yield p
    lost = [x for x in study["precision"] if x not in ran]
    if lost:
        raise ConfigError("precision", f"{lost[0]}: no combination can run it (it needs "
                          f"numerics int4 and, on WS, at least "
                          f"{'2' if lost[0] == 'w4a8' else '4'} rows); add one")


def _energy(study, common):
    """The job's ``energy`` switch, only when on (the keys of earlier results stay)."""
    if study.get("energy") and not (study.get("liberty") and common.get("liberty") is not False):
        raise SweepConfigError("energy = true needs liberty (the energy flow prices the "
                               "Nangate45 netlist): keep liberty on, or drop energy "
                               "(--no-energy)")
    return {"energy": True} if study.get("energy") else {}


def _precision(p):
    """The job's ``precision``, only when not int4 (the keys of earlier results stay)."""
    return {"precision": p["precision"]} if p["precision"] != "int4" else {}


def expand(config, source="config"):
    """The jobs of a checked config, in a fixed order, duplicates removed. A job is a
    JSON-able dict with ``study`` first. :class:`SweepConfigError` if a combination is
    not a valid design (e.g. a tile that does not divide the array)."""
    from hdl.split import SplitConfig
    common = config.get("sweep", {})
    jobs, study = [], None
    try:
        if "mac" in config:
            study, s = "mac", config["mac"]
            for p, mac in _mac_jobs(s, _MAC_KEYS):
                jobs.append({"study": "mac", "mac": mac, "liberty": s["liberty"],
                             "fpga": s["fpga"], **_energy(s, common)})
        if "array" in config:
            study, s = "array", config["array"]
            combos = [({**p, "mac": mac}, _fused(p["size"], p["size"], p["dataflow"], mac,
                                                  p["precision"]))
                      for p, mac in _mac_jobs(s, ["size", "dataflow", "precision",
                                                  *_MAC_KEYS])]
            for p in _precision_jobs(s, combos):
                jobs.append({"study": "array", "size": p["size"], "dataflow": p["dataflow"],
                             "mac": p["mac"], "liberty": s["liberty"], "fpga": s["fpga"],
                             **_energy(s, common), **_precision(p)})
        if "split" in config:
            study = "split"
            for p, mac in _mac_jobs(config["split"], ["size", "tile", "style", *_MAC_KEYS]):
                SplitConfig(p["size"], p["size"], p["tile"], MacConfig(**mac), p["style"])
                jobs.append({"study": "split", "size": p["size"], "tile": p["tile"],
                             "style": p["style"], "mac": mac})
        if "gemm" in config:
            study, s = "gemm", config["gemm"]
            combos = []
            for p in _product(s, ["size", "tile", "batch", "pipeline", "acc_width",
                                  "precision", "shapes"]):
                mac = {"numerics": "int4", "pipeline": p["pipeline"],
                       "acc_width": p["acc_width"]}
                split = SplitConfig(p["size"], p["size"], p["tile"],
                                    MacConfig(pipeline=p["pipeline"],
                                              acc_width=p["acc_width"]))
                combos.append((p, _fused(p["size"], p["size"], split.dataflow, mac,
                                         p["precision"], split.fold_overlap)))
            for p in _precision_jobs(s, combos):
                jobs.append({"study": "gemm", "size": p["size"], "tile": p["tile"],
                             "batch": p["batch"], "pipeline": p["pipeline"],
                             "shape": p["shapes"], **_precision(p),
                             **({"acc_width": p["acc_width"]} if p["acc_width"] != 16
                                else {})})
    except ConfigError as e:
        raise SweepConfigError(f"sweep {source}: [{study}] {e}") from None
    for job in jobs:
        if job.get("liberty") and common.get("liberty") is False:
            job["liberty"] = False
        if job.get("fpga"):
            job["device"] = common.get("device", "up5k")
    seen, out = set(), []
    for job in jobs:
        text = json.dumps(job, sort_keys=True)
        if text not in seen:
            seen.add(text)
            out.append(job)
    return out
