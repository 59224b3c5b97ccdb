"""The ``graphc`` command: ``graphc info`` (versions and flags) and ``graphc cache
info|list|clear|prune`` (the on-disk cache at ``GRAPHC_CACHE_DIR``, see docs/cache.md).

Run it as ``graphc info`` or ``python -m graphc info``.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
from importlib import metadata

USAGE_ERROR = 2
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def info_lines() -> list[str]:
    """What ``graphc info`` prints: versions, devices and the config flags."""
    import graphc

    lines = [
        f"graphc {graphc.__version__}",
        f"python {platform.python_version()} ({sys.executable})",
        f"numpy {_version('numpy')}",
        f"llvmlite {_version('llvmlite')}",
        f"networkx {_version('networkx')}",
        f"pycuda {_version('pycuda')}",
        f"cuda available: {graphc.cuda_available()}",
        "config flags (set GRAPHC_FLAGS=name=value,... to change them):",
    ]
    flags = graphc.config._values
    lines += [f"  {name} = {flags[name]!r}" for name in sorted(flags)]
    return lines


def cmd_info(args: argparse.Namespace) -> int:
    print("\n".join(info_lines()))
    return 0


def parse_size(text: str) -> int:
    """A size in bytes from ``"123"``, ``"100K"``, ``"100M"``, ``"1.5G"`` (KiB, MiB, GiB; a
    trailing ``B`` or ``iB`` is allowed)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([KMGT]?)(?:I?B)?\s*", text.upper())
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (examples: 500K, 100M, 2G)")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def human_size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _entries(n: int) -> str:
    return f"{n} entry" if n == 1 else f"{n} entries"


def _cache():
    from .runtime.cache import DiskCache

    return DiskCache()


def cache_info_lines(cache) -> list[str]:
    info = cache.info()
    env = os.environ.get("GRAPHC_CACHE_DIR")
    origin = "from GRAPHC_CACHE_DIR" if env and str(cache.root) == env else "config.cache_dir"
    exists = "" if info["exists"] else ", does not exist yet"
    lines = [f"graphc cache at {info['location']} ({origin}{exists})"]
    counts = cache.lifetime_stats()
    rows = [(ns, d["entries"], d["bytes"], counts[ns]) for ns, d in info["namespaces"].items()]
    total = {k: sum(c[k] for c in counts.values()) for k in ("hits", "misses", "writes")}
    rows.append(("total", info["entries"], info["bytes"], total))
    lines += [f"  {name + ':':9} {_entries(n):>14}  {human_size(size):>10}   {c['hits']} hits, "
              f"{c['misses']} misses, {c['writes']} writes" for name, n, size, c in rows]
    lines.append("  (hits, misses and writes: summed over the processes that used the cache)")
    return lines


def cmd_cache_info(args: argparse.Namespace) -> int:
    print("\n".join(cache_info_lines(_cache())))
    return 0


def cmd_cache_list(args: argparse.Namespace) -> int:
    entries = sorted(_cache().entries(args.namespace), key=lambda e: e.mtime, reverse=True)
    if not entries:
        print("the cache is empty")
        return 0
    print(f"{'namespace':9}  {'key':64}  {'size':>10}  last used")
    for e in entries:
        used = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.mtime))
        print(f"{e.namespace:9}  {e.key:64}  {human_size(e.size):>10}  {used}")
    return 0


def cmd_cache_clear(args: argparse.Namespace) -> int:
    cache = _cache()
    removed = cache.clear(args.namespace)
    print(f"removed {_entries(len(removed))} ({human_size(sum(e.size for e in removed))}) "
          f"from {cache.root}")
    return 0


def cmd_cache_prune(args: argparse.Namespace) -> int:
    cache = _cache()
    removed = cache.prune(max_bytes=args.max_size, older_than_days=args.older_than)
    left = cache.info()
    print(f"removed {_entries(len(removed))} ({human_size(sum(e.size for e in removed))}); "
          f"kept {_entries(left['entries'])} ({human_size(left['bytes'])}) in {cache.root}")
    return 0


def _days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        days = -1.0
    if not days >= 0:
        raise argparse.ArgumentTypeError(f"not a number of days: {text!r}")
    return days


def _add_cache_parser(commands) -> None:
    cache = commands.add_parser("cache", help="manage the on-disk cache of kernels and graphs",
                                description="The on-disk cache (GRAPHC_CACHE_DIR moves it).")
    cache.set_defaults(run=cmd_cache_info)
    actions = cache.add_subparsers(dest="action", metavar="ACTION")
    actions.add_parser("info", help="location, entries and size (the default)").set_defaults(
        run=cmd_cache_info)
    for name, run, text in (("list", cmd_cache_list, "every entry, most recently used first"),
                            ("clear", cmd_cache_clear, "delete every entry")):
        action = actions.add_parser(name, help=text)
        action.add_argument("--namespace", choices=("kernels", "graphs", "cuda"), help="only this one")
        action.set_defaults(run=run)
    prune = actions.add_parser(
        "prune", help="delete corrupt, old and least recently used entries",
        description="Delete corrupt entries, entries unused for --older-than DAYS, then the "
                    "least recently used entries until the cache fits in --max-size.")
    prune.add_argument("--max-size", type=parse_size, metavar="SIZE",
                       help="keep at most this much (e.g. 500K, 100M, 2G)")
    prune.add_argument("--older-than", type=_days, metavar="DAYS",
                       help="delete entries not used for this many days")
    prune.set_defaults(run=cmd_cache_prune)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="graphc", description="graphc: a symbolic graph compiler")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    info = commands.add_parser("info", help="versions, devices and config flags")
    info.set_defaults(run=cmd_info)
    _add_cache_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return USAGE_ERROR
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
