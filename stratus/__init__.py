"""Stratus: a compact, fast re-implementation of the OpenStack Compute architecture."""

__version__ = "0.1.0"
