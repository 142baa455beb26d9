"""Ctrl-C in the first seconds of ``tsla`` (while torch is imported): one line, not a 40-line traceback."""

from __future__ import annotations

import sys
from typing import Callable


def quiet_interrupt() -> Callable[[], None]:
    """Show an uncaught ``KeyboardInterrupt`` as one line until the returned function is called (at the end of the
    package's imports); every other exception still goes to the previous ``sys.excepthook``. Python then exits as
    killed by SIGINT (status 130 in a shell), as it does for any unhandled Ctrl-C."""
    previous = sys.excepthook

    def hook(kind, value, traceback) -> None:
        if issubclass(kind, KeyboardInterrupt):
            print("tsla: interrupted while starting; nothing was written", file=sys.stderr)
        else:
            previous(kind, value, traceback)

    sys.excepthook = hook

    def restore() -> None:
        if sys.excepthook is hook:  # unless someone installed their own meanwhile
            sys.excepthook = previous

    return restore
