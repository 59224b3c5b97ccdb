"""Neural-network ops (being written)."""

__all__: list[str] = []
