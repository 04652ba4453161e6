"""Engines behind the store contract (see base.py)."""
