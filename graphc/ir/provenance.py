"""Where in user code a node was created, so errors can point at the user's line."""

from __future__ import annotations

import contextlib
import linecache
import os
import sys
import threading

_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_local = threading.local()


class Trace(tuple):
    """(filename, lineno) of the user's line."""

    __slots__ = ()

    def __str__(self) -> str:
        filename, lineno = self
        code = linecache.getline(filename, lineno).strip()
        return f'File "{filename}", line {lineno}' + (f": {code}" if code else "")


def user_trace() -> Trace | None:
    """The innermost frame outside the graphc package (or the override set by a rewrite)."""
    override = getattr(_local, "override", None)
    if override is not None:
        return override
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_PKG_DIR) and not filename.startswith("<frozen"):
            return Trace((filename, frame.f_lineno))
        frame = frame.f_back
    return None


@contextlib.contextmanager
def provenance(trace: Trace | None):
    """Nodes created inside the block carry ``trace`` (rewrites keep the replaced node's line)."""
    old = getattr(_local, "override", None)
    _local.override = trace if trace is not None else old
    try:
        yield
    finally:
        _local.override = old
