"""The end of a ``smartsync`` process, without the interpreter's teardown when nothing needs it.

When a command has finished, Python's finalization still frees every module and object one by one:
with DuckDB, pyarrow, numpy and cryptography loaded that is 0.1-0.2 s of one core in which the
command has nothing left to do, a part of a first sync's serial tail the user waits for
(ARCHITECTURE.md, "Backfill"). A command that leaves nothing to tear down (its DuckDB connections
checkpointed and closed, its files written, its threads stopped) says so with
``nothing_to_tear_down()``; the console entry point then runs the ``atexit`` handlers (logging's
flush, the Dagster trail's pending events, spill folders), flushes stdout and stderr and ends the
process at once. Anything else, a failed command, a live non-daemon thread, output that cannot be
written (a reader that went away), ends the ordinary way.

Only the entry point ends the process: a command invoked in-process (``CliRunner``, tests) returns
as before whatever it declared.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn, TextIO

_nothing_to_tear_down = False


def nothing_to_tear_down() -> None:
    """Declare that this process's work is done and saved: its end may skip the teardown."""
    global _nothing_to_tear_down
    _nothing_to_tear_down = True


def only_daemon_threads() -> bool:
    """No thread but the main one that the interpreter would wait for (a pool, a writer)."""
    main = threading.main_thread()
    return all(t is main or t.daemon for t in threading.enumerate())  # enumerate: live threads only


def end(code: object) -> NoReturn:
    """End the process with ``code`` (a ``SystemExit`` code), skipping the teardown when declared
    safe: an integer code, ``nothing_to_tear_down()`` called, no non-daemon thread left."""
    if _nothing_to_tear_down and isinstance(code, int) and only_daemon_threads():
        atexit._run_exitfuncs()  # what the interpreter would run first: handlers still see every module
        if _flushed(sys.stdout, sys.stderr):
            os._exit(code)
    sys.exit(code)  # also when output could not be written (a reader gone): Python reports it, exit 120


def _flushed(*streams: TextIO) -> bool:
    try:
        for stream in streams:
            stream.flush()
    except (OSError, ValueError):
        return False
    return True
