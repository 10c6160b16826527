"""Calls of the cached tool flows (:mod:`hdl.flows`) on an executor of :mod:`sim.execute`,
with the cache on the client.

A :class:`Call` is one flow call (``synthesize``, ``liberty_area``, ``ice40_fmax``,
``synth_breakdown``, ...). :func:`run_calls` answers the calls already in the client's
:class:`hdl.cache.Cache` there (a probe of the cache: no tool runs), sends the others to
the executor with a cache that records what they store, and writes those entries on the
client as each call returns; it is :func:`sim.execute.run_jobs` with a cache adapter.
:func:`synthesize_jobs` runs :func:`hdl.flows.synth.synthesize_many`'s jobs that way.
"""
import json
from dataclasses import dataclass, field

from sim.execute import CachedFailure, one_line, run_jobs, worker_path

__all__ = ["Call", "run_calls", "synthesize_jobs"]


@dataclass(frozen=True)
class Call:
    """``fn(*args, **kwargs, cache=...)`` to run wherever an executor puts it. ``fn``: a
    module-level function (picklable) that takes ``cache=`` (:func:`hdl.cache.resolve_cache`)
    and looks its result up there before it runs any tool, as every flow of
    :mod:`hdl.flows` does."""
    fn: object
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)

    def __call__(self, cache):
        return self.fn(*self.args, **self.kwargs, cache=cache)

    def __str__(self):
        top = self.kwargs.get("top") or next((a for a in self.args[1:2]), "")
        return f"{getattr(self.fn, '__name__', self.fn)}({top})"


def _run_call(payload):
    """One :class:`Call` away from its client: its value or its error (one line), and
    the cache entries it made (every lookup misses here: the client already looked).
    Without a client cache (root None) the call runs uncached and records nothing."""
    from hdl.cache import RecordingCache
    call, files = payload
    cache = RecordingCache(worker_path(files)) if files is not None else False
    try:
        value, error = call(cache), None
    except Exception as e:                    # e.g. a design that does not fit a device:
        value, error = None, one_line(e)     # its entry is still worth keeping
    return {"value": value, "error": error, "entries": cache.entries if cache else []}


class _CallCache:
    """:func:`run_jobs`' cache protocol over a tool :class:`hdl.cache.Cache` for
    :class:`Call` payloads: a lookup runs the call against a probe of the cache (a
    result, or a stored failure, without any tool run), and a store writes the entries
    the call made where it ran."""

    def __init__(self, store):
        self.store_ = store

    def lookup(self, payload):
        from hdl.cache import CacheMiss, ProbeCache
        call, _ = payload
        if self.store_ is None:
            return None
        try:
            return call(ProbeCache(self.store_))
        except CacheMiss:
            return None
        except Exception as e:                # a cached failure
            raise CachedFailure(one_line(e)) from None

    def store(self, payload, got):
        for kind, key, suffix, text in got.get("entries", ()):
            self.store_.store_text(kind, key, suffix, text)
        return got.get("value"), got.get("error")


def run_calls(calls, *, executor, cache=True, progress=None):
    """Run the :class:`Call` list on ``executor`` with the client-side ``cache``
    (:func:`hdl.cache.resolve_cache`; None or False: nothing is cached, every call is
    sent and runs uncached); a :class:`RunReport` whose outcomes hold each call's value
    (or its error, one line), in call order.

    A call whose result is in ``cache`` is answered here and never sent (a cached
    failure, such as a design that did not fit, comes back as its error). The others run
    on ``executor`` with a cache that records what they store; the client writes those
    entries into ``cache`` as each call returns, so a second call of the same flow here
    is a cache hit and an interrupted run keeps what finished. ``progress`` as for
    :func:`run_jobs`."""
    from hdl.cache import resolve_cache
    store = resolve_cache(cache)
    root = store.root if store is not None else None
    return run_jobs([(call, root) for call in calls], _run_call, executor=executor,
                    cache=_CallCache(store), progress=progress)


def synthesize_jobs(jobs, *, executor=None, progress=None, processes=None, **common):
    """:func:`hdl.flows.synth.synthesize_many`'s jobs and result (SynthResults in job
    order; the first failing job's :class:`YosysError` raised after all finished), run on
    ``executor`` (:func:`run_calls`: cached jobs are answered on the client and never
    sent) or, without one, in synthesize_many's local thread pool of ``processes``."""
    from hdl.flows.synth import YosysError, job_kwargs, raise_first, synthesize, \
        synthesize_many, yosys_version
    if executor is None:
        return synthesize_many(jobs, processes, progress=progress, **common)
    jobs = [{**common, **job_kwargs(job)} for job in jobs]
    if not jobs:
        return []
    yosys_version()                    # compile the WebAssembly once, not in every worker
    cache = {json.dumps(str(j.get("cache", True))) for j in jobs}
    if len(cache) > 1:
        raise ValueError("synthesize_jobs: every job on an executor shares one cache")
    cache = jobs[0].get("cache", True)
    calls = [Call(synthesize, (j["verilog"],), {k: v for k, v in j.items()
                                                 if k not in ("verilog", "cache")})
             for j in jobs]

    def tick(state):
        o = state.last
        if progress is not None and o is not None and o.error is None and o.where != "cache":
            progress(o.value)
    report = run_calls(calls, executor=executor, cache=cache, progress=tick)
    results = [YosysError(o.error.removeprefix("YosysError: ")) if o.error else o.value
               for o in report.outcomes]
    return raise_first(jobs, results)
