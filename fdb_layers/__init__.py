"""Layers over the store contract: the only code that knows keys and engines."""
