"""Cached gate-level activity captures (:class:`hdl.flows.activity.GateSim` runs), and
schedule lanes as port bits."""
import hashlib
import io
import zipfile
import json

import numpy as np

from ..cache import resolve_cache
from ..emit import write_atomic_bytes
from .activity import Activity, GateSim

__all__ = ["capture_activity", "lanes_to_bits"]

_ACTIVITY_FORMAT = 2


def lanes_to_bits(lanes, bits):
    """``uint8 [T, L]`` lanes of ``bits`` bits each (a schedule's port, lane 0 in the
    low bits) -> ``uint8 [T, L * bits]`` port bits, bit 0 first."""
    lanes = np.asarray(lanes, dtype=np.uint8)
    shifts = np.arange(bits, dtype=np.uint8)
    return ((lanes[:, :, None] >> shifts) & 1).reshape(lanes.shape[0], -1)


def capture_activity(netlist, top, lib, ports, cycles, *, glitch=False, warmup=0,
                     delays=None,
                     weights=None, clock_enable=None, cache=True, key_extra=None,
                     progress=None, sim=None):
    """:meth:`GateSim.run` on a mapped ``netlist``, remembered in ``cache`` (kind
    ``energy/activity``, one ``.npz`` written atomically: a crash never leaves half a
    capture) under a key of the netlist, the stimulus, the mode and the weights.
    Returns ``(GateSim, Activity, cached)``; ``sim``: an already compiled GateSim."""
    sim = sim or GateSim(netlist, top, lib)
    store = resolve_cache(cache)
    key = None
    if store:
        h = hashlib.sha256()
        h.update(json.dumps({"format": _ACTIVITY_FORMAT, "top": top, "cycles": cycles,
                             "glitch": glitch, "warmup": warmup, "extra": key_extra},
                            sort_keys=True).encode())
        h.update(json.dumps(netlist["modules"][top], sort_keys=True).encode())
        for name in sorted(ports):
            h.update(name.encode() + np.ascontiguousarray(ports[name]).tobytes())
        if weights is not None:
            for k in ("rise", "fall", "clock", "flop_group", "gate"):
                if k in weights:
                    h.update(k.encode() + np.ascontiguousarray(weights[k]).tobytes())
        if delays is not None:
            h.update(b"delays" + np.ascontiguousarray(delays, np.int64).tobytes())
        if clock_enable is not None:
            for w in clock_enable:
                h.update(b"enable" + np.ascontiguousarray(w).tobytes())
        key = h.hexdigest()
        path = store.path("energy/activity", key, ".npz")
        if path.exists():
            try:
                with np.load(path) as z:
                    act = Activity(z["rise"], z["fall"], int(z["cycles"]), z["clock_states"],
                                   z["per_cycle"] if z["per_cycle"].size else None,
                                   float(z["seconds"]), bool(z["glitch"]),
                                   float(z["cpu_seconds"]),
                                   z["gates_open"] if "gates_open" in z.files else None)
                    if "timing" in z.files:
                        act.timing = str(z["timing"])
                return sim, act, True
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
                pass                           # empty, truncated or damaged: recompute
    act = sim.run(ports, cycles, glitch=glitch, warmup=warmup, weights=weights, delays=delays,
                  clock_enable=clock_enable, progress=progress)
    if store:
        buf = io.BytesIO()
        np.savez_compressed(buf, rise=act.rise, fall=act.fall, cycles=act.cycles,
                            clock_states=act.clock_states,
                            per_cycle=act.per_cycle if act.per_cycle is not None
                            else np.zeros(0), seconds=act.seconds, glitch=act.glitch,
                            cpu_seconds=act.cpu_seconds, timing=act.timing,
                            gates_open=act.gates_open)
        store.dir("energy/activity")
        write_atomic_bytes(store.path("energy/activity", key, ".npz"), buf.getvalue())
    return sim, act, False
