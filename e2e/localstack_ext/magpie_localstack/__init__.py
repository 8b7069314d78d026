"""Magpie's LocalStack extension (see plugins.py for what it plugs in)."""
