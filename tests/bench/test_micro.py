"""The micro-benchmark still patches the code it compares against (it broke once, silently,
when the SQLite code moved into chalicelib/sqlite_file.py)."""

from __future__ import annotations

from bench import micro
from chalicelib import sqlite_file


def test_the_old_connection_per_operation_is_patched_in_and_out():
    current = sqlite_file.SqliteFile.connect
    with micro._connection_per_operation():
        assert sqlite_file.SqliteFile.connect is not current
        assert micro.bus_store_cycle(events=3) > 0
    assert sqlite_file.SqliteFile.connect is current
    assert micro.bus_store_cycle(events=3) > 0
