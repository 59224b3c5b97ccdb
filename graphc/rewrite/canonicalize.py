"""Rules of the canonicalize and constant_folding sets (filled in below)."""

from __future__ import annotations

from .registry import CANONICALIZE, CONSTANT_FOLDING  # noqa: F401
