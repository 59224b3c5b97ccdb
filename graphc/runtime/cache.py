"""The on-disk cache: compiled kernels and rewritten graphs, keyed by content.

Layout: ``<root>/<namespace>/<key>.entry`` with three namespaces, ``kernels`` (CPU object
code, keyed by ``kernel_key``), ``graphs`` (serialised rewritten graphs, keyed by
``graph_cache_key``) and ``cuda`` (PTX and cubins, see ``graphc.cuda.target``). The root is ``config.cache_dir`` (``GRAPHC_CACHE_DIR`` moves it).

An entry is ``magic, format version, payload length, sha256(payload)`` followed by the
payload. Writes go to a temporary file in the same directory, are fsynced and renamed over
the entry (``os.replace``), so concurrent writers of one key all succeed and a reader sees
either a whole entry or none; no lock is needed. A truncated or corrupt entry is deleted
and read as a miss. Directories are created 0700 and files 0600; files or directories not
owned by the current user are never read and never written into. A hit touches the entry's
mtime, which ``prune`` reads as its last use.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import re
import stat
import struct
import tempfile
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from ..ir.serialize import encode_value, graph_key

NAMESPACES = ("kernels", "graphs", "cuda")
# bump when the calling convention of compiled kernels changes
KERNEL_ABI_VERSION = 1
# how kernels are compiled: the pipeline's speed level (O2 with both vectorisers: O3's extra
# passes took 12% of a cold compile and changed no kernel's speed) and the features added to
# the host's; one definition for the compiler and for the keys of the objects it makes
KERNEL_SPEED_LEVEL = 2
EXTRA_FEATURES = ",-prefer-256-bit"  # 256-bit vectors even where AVX-512 exists
ENTRY_FORMAT = 1
_MAGIC = b"GRAPHCE\x00"
_HEADER = struct.Struct("<8sHQ32s")  # magic, format, payload length, sha256 of the payload
_SUFFIX = ".entry"
_TEMP_PREFIX = ".tmp-"
_KEY = re.compile(r"[0-9a-f]{16,128}\Z")
_STALE_TEMP_SECONDS = 3600.0  # a temporary file this old belongs to a writer that died
_COUNTERS = ("hits", "misses", "writes", "corrupt", "rejected", "errors")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_STATS_FILE = "stats.json"  # counts summed over processes, for `graphc cache info`


# --- keys ------------------------------------------------------------------------------------

class KernelTarget(NamedTuple):
    """What a kernel was compiled for: LLVM target triple, CPU name and CPU features."""

    triple: str
    cpu: str = ""
    features: str = ""


def host_target() -> KernelTarget:
    """The machine this process runs on, as LLVM sees it (imports llvmlite.binding)."""
    import llvmlite.binding as llvm

    return KernelTarget(llvm.get_process_triple(), llvm.get_host_cpu_name(),
                        llvm.get_host_cpu_features().flatten() + EXTRA_FEATURES)


def as_target(target) -> KernelTarget:
    """A KernelTarget from a KernelTarget, a mapping (triple, cpu, features) or a tuple."""
    if isinstance(target, Mapping):
        target = KernelTarget(**target)
    elif not isinstance(target, KernelTarget):
        target = KernelTarget(*target)
    features = target.features
    if not isinstance(features, str):
        features = ",".join(features)
    # NOTE: the order LLVM lists features in carries no meaning: sort them
    features = ",".join(sorted(f for f in features.split(",") if f))
    return KernelTarget(str(target.triple), str(target.cpu), features)


def kernel_key(ir_text: str, target) -> str:
    """sha256 over the kernel's LLVM IR, the target and the versions that shape the binary."""
    t = as_target(target)
    parts = ("graphc-kernel", KERNEL_ABI_VERSION, KERNEL_SPEED_LEVEL, _llvmlite_version(),
             t.triple, t.cpu, t.features, ir_text)
    return hashlib.sha256(encode_value(parts).encode()).hexdigest()


def graph_cache_key(inputs: Sequence, outputs: Sequence, mode="FAST_RUN", flags=(),
                    shared: list | None = None) -> str:
    """The ``graphs`` key of a function's input graph: its structure, the mode (a name or a
    Mode), the flags that change rewriting (a mapping or pairs) and graphc's source code.
    ``shared``: as in ``graph_key``."""
    if isinstance(mode, str):
        mode = (mode, ())
    else:  # a graphc.rewrite.Mode
        mode = (mode.name, tuple(sorted(mode.exclude)))
    flags = tuple(sorted(flags.items() if isinstance(flags, Mapping) else flags))
    return graph_key(inputs, outputs, extra=("graphs", mode, flags, code_fingerprint()),
                     shared=shared)


def _llvmlite_version() -> str:
    try:
        import llvmlite
    except ImportError:
        return "none"
    return llvmlite.__version__


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """sha256 of graphc's own Python sources: a rewritten graph is only valid for the code
    that rewrote it, and a development checkout changes without a new version number."""
    package = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        h.update(path.relative_to(package).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


# --- entries ---------------------------------------------------------------------------------

def pack_entry(payload: bytes) -> bytes:
    """The header of an entry holding ``payload``."""
    return _HEADER.pack(_MAGIC, ENTRY_FORMAT, len(payload), hashlib.sha256(payload).digest())


def unpack_entry(raw: bytes) -> bytes | None:
    """The payload of a whole entry file, or None if it is truncated, corrupt or foreign."""
    if len(raw) < _HEADER.size:
        return None
    magic, fmt, length, digest = _HEADER.unpack_from(raw)
    payload = raw[_HEADER.size:]
    if magic != _MAGIC or fmt != ENTRY_FORMAT or length != len(payload):
        return None
    if hashlib.sha256(payload).digest() != digest:
        return None
    return payload


@dataclass(frozen=True)
class CacheEntry:
    namespace: str
    key: str
    size: int  # bytes on disk, header included
    mtime: float  # the last write or hit
    path: Path


def _current_uid() -> int | None:
    return os.getuid() if hasattr(os, "getuid") else None


def _owned(st: os.stat_result) -> bool:
    uid = _current_uid()
    return uid is None or st.st_uid == uid


# --- the cache -------------------------------------------------------------------------------

class DiskCache:
    """A directory of cache entries in the namespaces ``kernels``, ``graphs`` and ``cuda``.

    ``get`` and ``put`` never raise for problems on disk: a missing, corrupt, foreign or
    unreadable entry is a miss, and a failed write returns False (with one warning).
    """

    def __init__(self, root: str | os.PathLike | None = None):
        if root is None:
            from ..config import config

            root = config.cache_dir
        self.root = Path(root).expanduser()
        self._stats = {ns: dict.fromkeys(_COUNTERS, 0) for ns in NAMESPACES}
        self._flushed = self.stats()
        self._warned = False

    def __repr__(self) -> str:
        return f"DiskCache({str(self.root)!r})"

    # --- reading and writing -----------------------------------------------------------
    def get(self, namespace: str, key: str) -> bytes | None:
        """The payload stored under ``key``, or None (a miss)."""
        path = self._path(namespace, key)
        payload = self._read(namespace, path)
        self._count(namespace, "hits" if payload is not None else "misses")
        return payload

    def put(self, namespace: str, key: str, data: bytes) -> bool:
        """Store ``data`` under ``key`` atomically; False if it could not be written."""
        path = self._path(namespace, key)
        payload = bytes(data)
        if not self._private_dir(self.root) or not self._private_dir(path.parent):
            self._count(namespace, "errors")
            return False
        try:
            _write_atomic(path, (pack_entry(payload), payload), fsync=True)
        except OSError as exc:
            self._count(namespace, "errors")
            self._warn(f"graphc cache: could not write {path}: {exc}")
            return False
        self._count(namespace, "writes")
        return True

    def _read(self, namespace: str, path: Path) -> bytes | None:
        try:
            fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
        except OSError:  # absent (the usual miss), a symlink, unreadable
            return None
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode) or not _owned(st):
                self._count(namespace, "rejected")
                return None
            try:
                raw = f.read()
            except OSError:
                return None
        payload = unpack_entry(raw)
        if payload is None:
            self._count(namespace, "corrupt")
            _unlink(path, st)
            return None
        try:
            os.utime(path)  # the last use, for prune
        except OSError:
            pass
        return payload

    def _path(self, namespace: str, key: str) -> Path:
        if namespace not in NAMESPACES:
            raise ValueError(f"cache namespace must be one of {NAMESPACES}, got {namespace!r}")
        if not isinstance(key, str) or not _KEY.match(key):
            raise ValueError(f"cache key must be 16 to 128 lowercase hex digits, got {key!r}")
        return self.root / namespace / (key + _SUFFIX)

    def _private_dir(self, path: Path) -> bool:
        """Create ``path`` (mode 0700) if needed; True if it is a directory this user owns."""
        try:
            path.mkdir(mode=0o700, parents=True)
            os.chmod(path, 0o700)  # mkdir's mode is masked by the umask
        except FileExistsError:
            pass
        except OSError as exc:
            self._warn(f"graphc cache: cannot create {path}: {exc}")
            return False
        try:
            st = os.stat(path)
        except OSError:
            return False
        if not stat.S_ISDIR(st.st_mode) or not _owned(st):
            self._warn(f"graphc cache: {path} is not a directory owned by this user; not using it")
            return False
        return True

    def _count(self, namespace: str, what: str) -> None:
        self._stats[namespace][what] += 1

    def _warn(self, message: str) -> None:
        if not self._warned:
            self._warned = True
            warnings.warn(message, RuntimeWarning, stacklevel=3)

    # --- bookkeeping -------------------------------------------------------------------
    def stats(self) -> dict[str, dict[str, int]]:
        """This process's counts per namespace: hits, misses, writes, corrupt entries
        dropped, entries rejected (not owned by this user), failed writes."""
        return {ns: dict(counts) for ns, counts in self._stats.items()}

    def flush_stats(self) -> None:
        """Add this process's counts since the last flush to ``stats.json`` in the cache
        directory (read by ``lifetime_stats`` and ``graphc cache info``). Never raises."""
        now = self.stats()
        delta = {ns: {k: now[ns][k] - self._flushed[ns][k] for k in _COUNTERS} for ns in now}
        if not any(v for counts in delta.values() for v in counts.values()):
            return
        if not self._private_dir(self.root):
            return
        try:
            with _locked(self.root / ".stats.lock"):
                total = self.lifetime_stats()
                for ns, counts in delta.items():
                    for k, v in counts.items():
                        total[ns][k] += v
                _write_atomic(self.root / _STATS_FILE, [json.dumps(total).encode()])
        except OSError:
            return
        self._flushed = now

    def lifetime_stats(self) -> dict[str, dict[str, int]]:
        """The counts of every process that flushed its stats into this directory."""
        total = {ns: dict.fromkeys(_COUNTERS, 0) for ns in NAMESPACES}
        try:
            saved = json.loads((self.root / _STATS_FILE).read_bytes())
            for ns in NAMESPACES:
                for k in _COUNTERS:
                    total[ns][k] = int(saved[ns][k])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # absent or damaged: start again from zero
        return total

    def entries(self, namespace: str | None = None) -> list[CacheEntry]:
        """The entries on disk (owned by this user), by namespace and key."""
        found = []
        for ns in self._namespaces(namespace):
            for item in _scan(self.root / ns):
                name = item.name
                if not name.endswith(_SUFFIX) or not _KEY.match(name[:-len(_SUFFIX)]):
                    continue
                st = _lstat(item)
                if st is not None and stat.S_ISREG(st.st_mode) and _owned(st):
                    found.append(CacheEntry(ns, name[:-len(_SUFFIX)], st.st_size, st.st_mtime,
                                            Path(item.path)))
        return sorted(found, key=lambda e: (e.namespace, e.key))

    def info(self) -> dict:
        """Where the cache is, and its entries and bytes per namespace."""
        entries = self.entries()
        per_ns = {ns: {"entries": 0, "bytes": 0} for ns in NAMESPACES}
        for e in entries:
            per_ns[e.namespace]["entries"] += 1
            per_ns[e.namespace]["bytes"] += e.size
        return {"location": str(self.root), "exists": self.root.is_dir(), "namespaces": per_ns,
                "entries": len(entries), "bytes": sum(e.size for e in entries)}

    def clear(self, namespace: str | None = None) -> list[CacheEntry]:
        """Delete every entry (of one namespace, or all, then with the saved counts) and
        leftover temporary files."""
        removed = [e for e in self.entries(namespace) if _unlink(e.path)]
        self._remove_temps(namespace, older_than=0.0)
        if namespace is None:
            _unlink(self.root / _STATS_FILE)
        return removed

    def prune(self, max_bytes: int | None = None, older_than_days: float | None = None,
              ) -> list[CacheEntry]:
        """Delete corrupt entries, entries unused for ``older_than_days``, then the least
        recently used ones until at most ``max_bytes`` remain. Returns what was deleted."""
        if max_bytes is not None and (not isinstance(max_bytes, int) or max_bytes < 0):
            raise ValueError(f"prune: max_bytes must be a non-negative int, got {max_bytes!r}")
        if older_than_days is not None and not older_than_days >= 0:
            raise ValueError(f"prune: older_than_days must be >= 0, got {older_than_days!r}")
        cutoff = -1.0 if older_than_days is None else time.time() - older_than_days * 86400.0
        drop, kept = [], []
        for e in self.entries():
            (drop if e.mtime < cutoff or not _entry_is_valid(e.path) else kept).append(e)
        if max_bytes is not None:
            kept.sort(key=lambda e: e.mtime, reverse=True)  # most recently used first
            total = sum(e.size for e in kept)
            while kept and total > max_bytes:
                total -= kept[-1].size
                drop.append(kept.pop())
        self._remove_temps(None, older_than=_STALE_TEMP_SECONDS)
        return [e for e in drop if _unlink(e.path)]

    def _namespaces(self, namespace: str | None) -> Iterable[str]:
        if namespace is None:
            return NAMESPACES
        if namespace not in NAMESPACES:
            raise ValueError(f"cache namespace must be one of {NAMESPACES}, got {namespace!r}")
        return (namespace,)

    def _remove_temps(self, namespace: str | None, older_than: float) -> None:
        now = time.time()
        for ns in self._namespaces(namespace):
            for item in _scan(self.root / ns):
                st = _lstat(item)
                if (item.name.startswith(_TEMP_PREFIX) and st is not None and _owned(st)
                        and now - st.st_mtime >= older_than):
                    _unlink(Path(item.path))


class _locked:
    """An exclusive lock on ``path`` (flock; no lock where the platform has none)."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            import fcntl

            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except ImportError:
            pass
        return self

    def __exit__(self, *exc) -> None:
        os.close(self.fd)  # closing releases the lock


def _write_atomic(path: Path, chunks: Iterable[bytes], fsync: bool = False) -> None:
    """Write a temporary file next to ``path`` and rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        _unlink(Path(tmp))
        raise


def _scan(directory: Path) -> list[os.DirEntry]:
    try:
        st = os.lstat(directory)
        if not stat.S_ISDIR(st.st_mode) or not _owned(st):
            return []
        with os.scandir(directory) as it:
            return list(it)
    except OSError:
        return []


def _lstat(item: os.DirEntry) -> os.stat_result | None:
    try:
        return item.stat(follow_symlinks=False)
    except OSError:
        return None


def _entry_is_valid(path: Path) -> bool:
    try:
        return unpack_entry(path.read_bytes()) is not None
    except OSError:
        return True  # gone or unreadable now: not ours to judge


def _unlink(path: Path, seen: os.stat_result | None = None) -> bool:
    """Delete ``path``; with ``seen``, only if it is still the file that was read (a writer
    may have replaced it with a good entry since)."""
    try:
        if seen is not None:
            now = os.lstat(path)
            if (now.st_ino, now.st_dev) != (seen.st_ino, seen.st_dev):
                return False
        os.unlink(path)
    except OSError:
        return False
    return True


_default: DiskCache | None = None


def default_cache() -> DiskCache:
    """The process's cache at ``config.cache_dir`` (a new one if the flag changed)."""
    global _default
    from ..config import config

    if _default is None or _default.root != Path(config.cache_dir).expanduser():
        if _default is not None:
            _default.flush_stats()
        _default = DiskCache(config.cache_dir)
    return _default


@atexit.register
def _flush_default() -> None:
    if _default is not None:
        _default.flush_stats()
