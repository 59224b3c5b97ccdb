"""The ``graphc`` command: ``graphc info`` (versions and flags); ``graphc cache`` is future work.

Run it as ``graphc info`` or ``python -m graphc info``.
"""

from __future__ import annotations

import argparse
import platform
import sys
from importlib import metadata

NOT_IMPLEMENTED = 2


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


def cmd_cache(args: argparse.Namespace) -> int:
    action = f" {args.action}" if args.action else ""
    print(f"graphc cache{action}: not implemented yet", file=sys.stderr)
    return NOT_IMPLEMENTED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="graphc", description="graphc: a symbolic graph compiler")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    info = commands.add_parser("info", help="versions, devices and config flags")
    info.set_defaults(run=cmd_info)
    cache = commands.add_parser("cache", help="manage the kernel cache (not implemented yet)")
    cache.add_argument("action", nargs="?", help="info, list, clear or prune")
    cache.set_defaults(run=cmd_cache)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
