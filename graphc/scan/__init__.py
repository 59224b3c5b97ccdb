"""Loops over symbolic graphs: ``scan`` and its helpers ``map``, ``reduce``, ``foldl``,
``foldr``, with ``until`` for while loops (see ``docs/scan.md``).

``op`` defines the scan op and the views of its result, ``build`` turns a Python step
function into a scan node, ``loop`` runs it, ``grad`` differentiates it (backpropagation
through time, as another scan running backwards).
"""

from .build import ScanError, Until, foldl, foldr, map, reduce, scan, until

__all__ = ["scan", "map", "reduce", "foldl", "foldr", "until", "Until", "ScanError"]
