"""Rules of the stabilize set (filled in below)."""

from __future__ import annotations

from .registry import SETS  # noqa: F401
