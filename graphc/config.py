"""Global flags: ``graphc.config.floatX`` and friends.

Flags come from their defaults, then from the ``GRAPHC_FLAGS`` environment variable
(``GRAPHC_FLAGS="floatX=float32,device=cpu"``), then from assignments in code.
``config.change_flags(floatX="float32")`` changes flags inside a ``with`` block.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def _default_cache_dir() -> str:
    env = os.environ.get("GRAPHC_CACHE_DIR")
    if env:
        return env
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(base) / "graphc")


_CHOICES = {
    "floatX": ("float64", "float32"),
    "device": ("cpu", "cuda"),
    "mode": ("FAST_RUN", "FAST_COMPILE", "reference"),
}


class Config:
    """The flags. Unknown names and values outside a flag's choices raise at once."""

    _defaults = {
        "floatX": "float64",
        "device": "cpu",
        "mode": "FAST_RUN",
        "cache_dir": None,
        "print_rewrites": False,
        "compute_test_value": "off",
        # keep rewritten graphs and compiled kernels in cache_dir for the next process
        "disk_cache": True,
    }

    def __init__(self) -> None:
        object.__setattr__(self, "_values", dict(self._defaults))
        self._values["cache_dir"] = _default_cache_dir()
        self._load_env(os.environ.get("GRAPHC_FLAGS", ""))

    def _load_env(self, text: str) -> None:
        for item in filter(None, (p.strip() for p in text.split(","))):
            if "=" not in item:
                raise ValueError(f"GRAPHC_FLAGS: expected name=value, got {item!r}")
            name, value = (s.strip() for s in item.split("=", 1))
            try:
                setattr(self, name, _parse(self._defaults.get(name), value))
            except (AttributeError, ValueError) as exc:
                raise type(exc)(f"GRAPHC_FLAGS: {exc}") from None

    def __getattr__(self, name: str):
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"graphc.config has no flag {name!r}") from None

    def __setattr__(self, name: str, value) -> None:
        if name not in self._values:
            raise AttributeError(f"graphc.config has no flag {name!r}; flags: {sorted(self._values)}")
        if name in _CHOICES and value not in _CHOICES[name]:
            raise ValueError(f"config.{name} must be one of {_CHOICES[name]}, got {value!r}")
        self._values[name] = value

    @contextlib.contextmanager
    def change_flags(self, **flags):
        """Set flags for the duration of a ``with`` block, then restore them."""
        old = {name: getattr(self, name) for name in flags}
        try:
            for name, value in flags.items():
                setattr(self, name, value)
            yield self
        finally:
            for name, value in old.items():
                self._values[name] = value

    def __repr__(self) -> str:
        return "graphc.config(" + ", ".join(f"{k}={v!r}" for k, v in self._values.items()) + ")"


def _parse(default, value: str):
    if isinstance(default, bool):
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected a boolean (1/0, true/false, yes/no, on/off), got {value!r}")
    return value


config = Config()
