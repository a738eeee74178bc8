"""Stopping work cleanly: SIGTERM and Ctrl-C end a run between steps, a deadline ends one case.

Both raise an exception in the main thread at the next Python instruction, so a
backend call in progress (at most one encoder pass) finishes first, and every
`finally` and atomic write cleans up on the way out.
"""

from __future__ import annotations

import ctypes
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Interrupted(BaseException):
    """The run was asked to stop (SIGTERM or SIGINT); not an Exception, so per-case handlers let it pass."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class CaseTimeout(Exception):
    """A case ran past its `--case-timeout`."""


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, the first SIGTERM or SIGINT raises Interrupted and later ones are ignored
    (the run is already winding down); the previous handlers come back after."""
    signals = (signal.SIGTERM, signal.SIGINT)

    def stop(signum: int, frame: FrameType | None) -> None:
        for other in signals:
            signal.signal(other, signal.SIG_IGN)
        raise Interrupted(signum)

    previous = {signum: signal.signal(signum, stop) for signum in signals}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Raise CaseTimeout in the block once `seconds` of wall clock have passed (None: no limit).

    In the main thread, a timer thread signals the main thread alone (pthread_kill),
    where Python runs the handler; a process-wide alarm could interrupt a system call
    of any of the backend's worker threads instead. In another thread (a Dask worker
    runs tasks in its own threads, where no signal handler can run), the timer sets
    the exception asynchronously in that thread; either way it is raised at the next
    Python instruction.
    """
    if seconds is None:
        yield
        return
    message = f"abandoned after the case timeout of {seconds:g} s"
    if threading.current_thread() is not threading.main_thread():
        with _async_deadline(seconds, message):
            yield
        return

    def expire(signum: int, frame: FrameType | None) -> None:
        raise CaseTimeout(message)

    previous = signal.signal(signal.SIGALRM, expire)
    main = threading.main_thread().ident
    timer = threading.Timer(seconds, signal.pthread_kill, (main, signal.SIGALRM))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join()
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def _async_deadline(seconds: float, message: str) -> Iterator[None]:
    """`deadline` for a thread other than the main one: CaseTimeout set in it by the timer."""
    target = ctypes.c_ulong(threading.get_ident())
    timer = threading.Timer(seconds, ctypes.pythonapi.PyThreadState_SetAsyncExc,
                            (target, ctypes.py_object(CaseTimeout)))
    timer.daemon = True
    timer.start()
    try:
        yield
    except CaseTimeout:
        raise CaseTimeout(message) from None  # the asynchronous one carries no message
    finally:
        timer.cancel()
        timer.join()
        ctypes.pythonapi.PyThreadState_SetAsyncExc(target, None)  # one set just as the block ended
