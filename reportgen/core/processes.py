"""Worker processes: what every process reportgen starts does about its parent and Ctrl-C.

Two pools start processes of their own (the models of a run trained side by
side, a sweep's local workers); both follow the same two rules, written once
here: a worker ends at once when the process that started it dies, so
nothing writes into a run or sweep that nobody is building, and Ctrl-C is
the parent's to handle, which then ends its workers.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


def exit_with_parent() -> None:
    """End this process at once, from a watcher thread, when the process that started it dies."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def orphaned() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)  # no cleanup: the parent's work is abandoned, so is this one's

    threading.Thread(target=orphaned, name="exit-with-parent", daemon=True).start()


@contextmanager
def sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT while workers start: they inherit it, so Ctrl-C never reaches them."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers; nor does it get SIGINT then
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
