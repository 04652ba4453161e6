"""fdbmail: the stateless mail node."""

__version__ = "0.1.0"
