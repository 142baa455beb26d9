"""The command's standard output and error while it runs: a write that fails — the reader closed the pipe
(``tsla train | head -1``, ``tsla select | grep -m1 ^chosen``) or the disk is full (``> /dev/full``) — must not end
the work half done. Printing stops there (later output goes to /dev/null) and the command runs to its end, so a run
still writes its summary.json and select its selection.json.
"""

from __future__ import annotations

import errno
import io
import os
import sys
from contextlib import contextmanager
from typing import Iterator, TextIO


class GuardedStream(io.TextIOBase):
    """A text stream that forwards to ``stream`` until a write or flush raises ``OSError``; from then on it discards
    what it is given. ``failure`` is the first such error (None while every write succeeded)."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream, self.failure = stream, None

    def write(self, text: str) -> int:
        if self.failure is None:
            try:
                self.stream.write(text)
            except OSError as exc:
                self._fail(exc)
        return len(text)

    def flush(self) -> None:
        if self.failure is None:
            try:
                self.stream.flush()
            except OSError as exc:
                self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        """Remember ``exc`` and point the stream's file descriptor at /dev/null, so that what its buffer still holds
        is dropped when Python flushes it at exit, instead of failing a second time there."""
        self.failure = exc
        try:
            fd = self.stream.fileno()
        except (OSError, ValueError, io.UnsupportedOperation):  # a stream without a descriptor (a test's capture)
            return
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, fd)
        finally:
            os.close(null)
        try:
            self.stream.flush()
        except OSError:
            pass

    def isatty(self) -> bool:
        return self.failure is None and self.stream.isatty()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.stream, "encoding", "utf-8")


@contextmanager
def guarded_output() -> Iterator[tuple[GuardedStream, GuardedStream]]:
    """Install :class:`GuardedStream` as ``sys.stdout`` and ``sys.stderr`` for the block; yields (stdout, stderr)
    so the caller can ask whether a write failed. The original streams are back afterwards."""
    saved = sys.stdout, sys.stderr
    out, err = GuardedStream(sys.stdout), GuardedStream(sys.stderr)
    sys.stdout, sys.stderr = out, err
    try:
        yield out, err
    finally:
        out.flush()
        err.flush()
        if sys.stdout is out:
            sys.stdout = saved[0]
        if sys.stderr is err:
            sys.stderr = saved[1]


def lost_output(failure: OSError | None) -> str | None:
    """The one-line error for standard output that could not be written, or None when nothing needs saying: no
    failure, or a reader that closed the pipe (it stopped reading on purpose, as ``head`` does)."""
    if failure is None or failure.errno == errno.EPIPE or isinstance(failure, BrokenPipeError):
        return None
    reason = failure.strerror or str(failure)
    return (f"cannot write standard output ({reason}): what tsla printed is lost (the command itself ran to its "
            f"end); send the output where it can be written")
