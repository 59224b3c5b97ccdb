"""Backends that run a rewritten graph: ``reference`` (NumPy, the oracle) and, imported
lazily, the compiled ones."""
