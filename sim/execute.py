"""One execution layer for every fan-out of independent jobs (the sweep, the benches'
and reports' syntheses): local by default, or on a Dask cluster.

* :class:`LocalExecutor` runs jobs in a local process pool (or thread pool), as the
  sweep always has;
* :class:`DaskExecutor` sends them to a Dask scheduler (``distributed``) at an address
  such as ``tcp://10.0.0.5:8786``; its workers need this project installed (the same
  checkout), not a shared file system.

Both have one method, ``run(fn, payloads)``: an iterator of :class:`Outcome` in completion
order, one per payload. ``fn`` runs as ``fn(payload)`` wherever the executor puts it; a
job that raises comes back as an outcome with ``error`` set (one line) and does not stop
the others. Interrupting the iteration (Ctrl-C) cancels every job not yet finished.
:func:`hdl.flows.synth.synthesize_many` takes either executor through that method alone.

:func:`sim.flow_calls.run_calls` does the same for calls of the cached tool flows (``synthesize``,
``liberty_area``, ``ice40_fmax``, ``synth_breakdown``, ...): the calls already in the
client's :class:`hdl.cache.Cache` are answered there, the others run on the executor,
and the cache entries they make come back and are written by the client.

:func:`run_jobs` adds the client-side cache and progress: a job found in the cache is
never sent; each result is stored (by the client, as it arrives) before the next one is
read, so an interrupted run keeps what finished. A worker that dies mid-job has its job
rescheduled by the Dask scheduler on another worker (up to
``distributed.scheduler.allowed-failures`` times, default 3).
"""
import hashlib
import os
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

__all__ = ["ExecutorError", "Outcome", "Progress", "LocalExecutor", "DaskExecutor",
           "run_jobs", "RunReport", "make_executor", "worker_path", "SCHEDULER_ENV",
           "CONNECT_TIMEOUT", "HANDSHAKE_DEADLINE", "CachedFailure", "one_line"]

#: The environment variable naming a scheduler when ``--scheduler`` is not given.
SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"
#: Seconds to wait for a scheduler to accept the TCP connection.
CONNECT_TIMEOUT = 4
#: Seconds from the start of a connection to a scheduler's answer to Dask's handshake
#: (connect, handshake and an ``identity`` request together): a listener that accepts
#: but stays silent, or answers garbage, is refused within this deadline.
HANDSHAKE_DEADLINE = 6
#: Task retries on the cluster for errors outside the job itself (a job's own
#: exception is caught and returned; a lost worker is rescheduled by the scheduler).
DASK_RETRIES = 2


class ExecutorError(RuntimeError):
    """A scheduler that cannot be used (bad or unreachable address): one line."""


@dataclass
class Outcome:
    """What became of one job: its ``value``, or ``error`` (``"Type: message"``, one
    line) if it raised; ``where`` it ran (``"cache"``, ``"local"`` or a Dask worker's
    address) and its compute ``seconds``."""
    index: int
    value: object = None
    error: str | None = None
    where: str = "local"
    seconds: float = 0.0


def one_line(exc):
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def _here():
    """The Dask worker's address when running on one, else ``"local"``."""
    if "distributed" in sys.modules:
        from distributed import get_worker
        try:
            return get_worker().address
        except ValueError:
            pass
    return "local"


def worker_path(path):
    """Where a job keeps files named ``path`` (a tool cache root): ``path`` itself when it
    runs locally; on a Dask worker a directory of that worker's own scratch space, named
    after ``path`` (so a different ``path`` there is still a different, cold directory)."""
    if _here() == "local":
        return Path(path)
    from distributed import get_worker
    tag = hashlib.sha256(str(path).encode()).hexdigest()[:16]
    return Path(get_worker().local_directory) / "systolic" / tag


def _call(fn, payload):
    """Run one job where it was sent: (value, error, where, seconds)."""
    start = time.monotonic()
    try:
        value, error = fn(payload), None
    except Exception as e:                    # reported with the job, never re-raised here
        value, error = None, one_line(e)
    return value, error, _here(), round(time.monotonic() - start, 3)


class LocalExecutor:
    """A local pool of ``workers`` processes (default: every core), or threads with
    ``threads=True`` (for jobs that wait on a child process, such as Yosys)."""

    def __init__(self, *, workers=None, threads=False):
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                    or workers < 1):
            raise ValueError(f"workers: {workers!r} is not a positive integer")
        self.workers = workers or os.cpu_count() or 1
        self.threads = threads
        self.name = f"local ({self.workers} {'threads' if threads else 'processes'})"

    def slots(self):
        return self.workers

    def run(self, fn, payloads):
        from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
        payloads = list(payloads)
        if not payloads:
            return
        kind = ThreadPoolExecutor if self.threads else ProcessPoolExecutor
        pool = kind(max_workers=max(1, min(self.workers, len(payloads))))
        try:
            futures = {pool.submit(_call, fn, p): i for i, p in enumerate(payloads)}
            for future in as_completed(futures):
                value, error, where, seconds = future.result()
                yield Outcome(futures[future], value, error, where, seconds)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class DaskExecutor:
    """Jobs on the Dask cluster whose scheduler listens at ``address``. Connects at once;
    :class:`ExecutorError` (one line) if nothing accepts the connection within
    ``timeout`` seconds, or if what accepts it has not answered Dask's handshake as a
    scheduler within ``deadline`` seconds of the start (silent or garbage)."""

    def __init__(self, address, *, timeout=CONNECT_TIMEOUT, deadline=HANDSHAKE_DEADLINE):
        address = str(address).strip()
        if not address:
            raise ExecutorError("--scheduler: empty address; give HOST:PORT such as "
                                "tcp://127.0.0.1:8786")
        if "://" not in address:
            address = f"tcp://{address}"
        self.address = address
        start = time.monotonic()
        _probe(address, timeout)
        try:
            from distributed import Client
        except ImportError as e:             # pragma: no cover - pinned in pyproject.toml
            raise ExecutorError(f"--scheduler: {e}; install the pinned 'distributed'")
        _handshake(address, max(0.5, deadline - (time.monotonic() - start)))
        try:
            self.client = Client(address, timeout=f"{timeout}s", set_as_default=False)
        except (ValueError, TypeError) as e:
            raise ExecutorError(f"--scheduler: {address} is not a scheduler address "
                                f"({' '.join(str(e).split())[:100]}); give HOST:PORT such "
                                f"as tcp://127.0.0.1:8786") from None
        except (OSError, TimeoutError):
            raise ExecutorError(
                f"--scheduler: no Dask scheduler answers at {address} within {timeout} s; "
                f"start one with `dask scheduler` or drop --scheduler (and unset "
                f"{SCHEDULER_ENV})") from None
        self.name = f"dask {address}"

    def slots(self):
        workers = self.client.scheduler_info(n_workers=-1).get("workers", {})
        return max(1, sum(w.get("nthreads", 1) for w in workers.values()))

    def run(self, fn, payloads):
        from distributed import as_completed
        payloads = list(payloads)
        if not payloads:
            return
        token = hashlib.sha256(os.urandom(16)).hexdigest()[:12]
        keys = [f"systolic-job-{token}-{i}" for i in range(len(payloads))]
        futures = self.client.map(partial(_call, fn), payloads, key=keys, pure=False,
                                  retries=DASK_RETRIES)
        index = {f.key: i for i, f in enumerate(futures)}
        pending = set(index)
        try:
            for future in as_completed(futures, loop=self.client.loop):
                i = index[future.key]
                pending.discard(future.key)
                if future.status == "error":
                    exc = future.exception()
                    yield Outcome(i, None, one_line(exc), self.name)
                else:
                    value, error, where, seconds = future.result()
                    yield Outcome(i, value, error, where, seconds)
                future.release()
        except BaseException:
            left = [f for f in futures if f.key in pending]
            if left:
                try:
                    self.client.cancel(left, force=True)
                except Exception:             # the cluster may be gone; nothing to cancel
                    pass
            raise

    def close(self):
        try:
            self.client.close(timeout=2)
        except Exception:                     # closing a lost connection
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _probe(address, timeout):
    """Fail fast (one line) when nothing accepts TCP connections at a ``tcp://`` address,
    before the slower import of ``distributed`` and its connection retries."""
    import socket
    scheme, _, rest = address.partition("://")
    if scheme != "tcp":
        return                                # other transports: left to Dask
    host, _, port = rest.rstrip("/").rpartition(":")
    if not host or not port.isdigit():
        raise ExecutorError(f"--scheduler: {address} is not a scheduler address (no "
                            f"HOST:PORT); give one such as tcp://127.0.0.1:8786")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError:
        raise ExecutorError(
            f"--scheduler: no Dask scheduler answers at {address} within {timeout} s; "
            f"start one with `dask scheduler` or drop --scheduler (and unset "
            f"{SCHEDULER_ENV})") from None


def _handshake(address, seconds):
    """Raise :class:`ExecutorError` (one line) unless a Dask scheduler at ``address``
    completes the comm handshake and answers an ``identity`` request within ``seconds``.

    ``distributed``'s own connect timeout covers only the TCP connect: its handshake
    (``await comm.read()`` in ``distributed.comm.core.connect``) has no deadline, so a
    listener that accepts and stays silent would hang ``Client()`` for ever. Here the
    whole exchange runs under one ``asyncio.wait_for``."""
    import asyncio
    import logging
    from distributed.comm import connect

    async def talk():
        comm = await connect(address, timeout=seconds)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    quiet = logging.getLogger("distributed")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)          # its own logging of a broken peer
    try:
        info = asyncio.run(asyncio.wait_for(talk(), seconds))
    except (asyncio.TimeoutError, TimeoutError):
        raise ExecutorError(
            f"--scheduler: {address} accepts connections but sends no Dask handshake "
            f"within {seconds:.0f} s (not a Dask scheduler?); check the address or drop "
            f"--scheduler (and unset {SCHEDULER_ENV})") from None
    except Exception as e:                    # garbage, a closed comm, a refused frame
        raise ExecutorError(
            f"--scheduler: {address} answered, but not as a Dask scheduler (its reply "
            f"does not decode: {type(e).__name__}); check the address or drop "
            f"--scheduler (and unset {SCHEDULER_ENV})") from None
    finally:
        quiet.setLevel(level)
    if not isinstance(info, dict) or info.get("type") != "Scheduler":
        kind = info.get("type") if isinstance(info, dict) else type(info).__name__
        raise ExecutorError(
            f"--scheduler: {address} is a Dask {kind}, not a scheduler; give the "
            f"scheduler's address (tcp://HOST:8786 by default)")


def make_executor(scheduler=None, *, workers=None, threads=False, environ=None):
    """:class:`DaskExecutor` at ``scheduler`` (or at ``environ[SCHEDULER_ENV]`` when
    ``scheduler`` is None and ``environ`` is given), else a :class:`LocalExecutor`."""
    if scheduler is None and environ is not None:
        scheduler = environ.get(SCHEDULER_ENV) or None
    if scheduler is None:
        return LocalExecutor(workers=workers, threads=threads)
    return DaskExecutor(scheduler)


# ---------------------------------------------------------------------------------------
# Cache and progress on the client

@dataclass
class Progress:
    """Counts of a run so far, given to the ``progress`` callback after every event."""
    total: int
    done: int = 0                  # finished here or read from the cache
    cached: int = 0
    running: int = 0               # sent and running (at most the executor's slots)
    queued: int = 0                # sent and waiting for a free worker
    failed: int = 0
    last: Outcome | None = None

    def line(self):
        return (f"{self.done}/{self.total} done ({self.cached} cached), "
                f"{self.running} running, {self.queued} queued, {self.failed} failed")


@dataclass
class RunReport:
    """Every job's :class:`Outcome`, in job order."""
    outcomes: list
    executor: str
    seconds: float = 0.0
    failures: list = field(default_factory=list)

    @property
    def ran(self):
        return sum(1 for o in self.outcomes if o.where != "cache" and o.error is None)

    @property
    def cached(self):
        return sum(1 for o in self.outcomes if o.where == "cache")


class CachedFailure(Exception):
    """Raised by a cache's ``lookup`` for a job whose stored result is a failure (such
    as a design that did not fit a device): the job is answered with this error, as
    cached, and not sent again."""


def run_jobs(payloads, fn, *, executor, cache=None, progress=None):
    """Run ``fn(payload)`` for every payload, on ``executor``; a :class:`RunReport`.

    ``cache``: None, or an object with ``lookup(payload)`` and ``store(payload, value)``,
    both called here, on the client only:

    * ``lookup`` returns the stored value, None when there is none, or raises
      :class:`CachedFailure` for a stored failure; a payload found there is never sent;
    * ``store`` is called as each result arrives, before the next one is read (an
      interrupted run keeps what finished). It may return ``(value, error)`` to replace
      the outcome's: a job that ran but reports its own failure in its value (and still
      made entries worth storing) becomes a failed outcome.

    ``progress``: None or a callable given a :class:`Progress` after each cached,
    finished or failed job. A failing job is reported in ``failures`` (and its outcome's
    ``error``) and stored nowhere."""
    start = time.monotonic()
    payloads = list(payloads)
    outcomes = [None] * len(payloads)
    state = Progress(total=len(payloads))
    missing = []
    for i, p in enumerate(payloads):
        try:
            value, error = (cache.lookup(p) if cache is not None else None), None
        except CachedFailure as e:
            value, error = None, str(e)
        if value is None and error is None:
            missing.append(i)
        else:
            outcomes[i] = Outcome(i, value, error, "cache", 0.0)
            state.done += 1
            state.cached += 1
    slots = executor.slots() if missing else 1
    pending = len(missing)
    state.running, state.queued = min(pending, slots), max(0, pending - slots)
    if progress is not None:
        progress(state)
    if missing:
        for o in executor.run(fn, [payloads[i] for i in missing]):
            o.index = missing[o.index]
            outcomes[o.index] = o
            pending -= 1
            state.running, state.queued = min(pending, slots), max(0, pending - slots)
            if o.error is None and cache is not None:
                settled = cache.store(payloads[o.index], o.value)
                if settled is not None:
                    o.value, o.error = settled
            if o.error is None:
                state.done += 1
            else:
                state.failed += 1
            state.last = o
            if progress is not None:
                progress(state)
    return RunReport(outcomes=outcomes, executor=executor.name,
                     seconds=round(time.monotonic() - start, 2),
                     failures=[o for o in outcomes if o.error is not None])


def tqdm_progress(bar):
    """A ``progress`` callback that drives a tqdm ``bar`` (total = the job count)."""
    def update(state):
        bar.n = state.done + state.failed
        bar.set_postfix_str(f"cached {state.cached}, running {state.running}, queued "
                            f"{state.queued}, failed {state.failed}", refresh=False)
        bar.refresh()
    return update
