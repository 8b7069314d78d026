"""Who holds a piece of local work, and whether that holder is still alive.

The local adapters (the bus's running deliveries, the idempotency layer's in-progress
records) write an owner string when they take work, so that a restarted process can tell
work whose process is gone (reclaim it now) from work another live process is doing (wait
for it). A pid alone is not enough: pids are reused, so the owner also names the boot and
the process's start time, and a process counts as alive only if all three still match.

Processes that share a MAGPIE_HOME must share a pid namespace (one machine, or one
container): another namespace's pids mean nothing here, so its live work would look gone.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


@cache
def boot_id() -> str:
    try:
        return _BOOT_ID.read_text().strip()
    except OSError:  # not Linux: pid and start time only
        return "unknown-boot"


def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after its end.
    fields = stat[stat.rfind(")") + 2 :].split()
    if len(fields) < 20 or fields[0] in ("Z", "X"):  # a zombie has finished running
        return None
    return fields[19]


_owner: tuple[int, str] = (0, "")


def current_owner() -> str:
    """This process, as written into the work it holds: `<boot id>/<pid>/<start ticks>`.

    Remembered per pid: a forked child is another process and gets its own."""
    global _owner
    pid = os.getpid()
    if _owner[0] != pid:
        _owner = (pid, f"{boot_id()}/{pid}/{_start_ticks(pid) or '?'}")
    return _owner[1]


def is_alive(owner: str | None) -> bool:
    """Whether the process named by `owner` (from `current_owner`) still runs."""
    if not owner:
        return False
    parts = owner.split("/")
    if len(parts) != 3 or not parts[1].isdigit():
        return False
    boot, pid_text, ticks = parts
    if boot != boot_id():
        return False  # written before a reboot: that process is gone
    pid = int(pid_text)
    if ticks != "?":
        return _start_ticks(pid) == ticks
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
