"""A time limit for a call in the current thread (a public service's request), enforced by a watchdog."""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from typing import TypeVar

from low_metric.core.errors import Refused

T = TypeVar("T")


class _Overtime(BaseException):
    """Raised in the scoring thread when its time is up (a BaseException: `except Exception` lets it pass)."""


class _Watchdog:
    """Interrupts the calling thread with :class:`_Overtime` at the deadline, then every second until
    stopped (library code may swallow one interruption). Interruptions land between Python bytecodes."""

    def __init__(self, seconds: float) -> None:
        self.thread = ctypes.c_ulong(threading.get_ident())
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.fired = False
        threading.Thread(target=self._run, args=(seconds,), daemon=True).start()

    def _run(self, wait: float) -> None:
        while not self.stopped.wait(wait):
            with self.lock:
                if self.stopped.is_set():
                    return
                self.fired = True
                ctypes.pythonapi.PyThreadState_SetAsyncExc(self.thread, ctypes.py_object(_Overtime))
            wait = 1.0

    def stop(self) -> None:
        """Stop, and drop an interruption not yet delivered: none outlives this call."""
        while True:
            try:
                with self.lock:
                    self.stopped.set()
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(self.thread, None)
                return
            except _Overtime:  # delivered while stopping: stop again
                continue


def call_with_time_limit(seconds: float, fn: Callable[[], T], *, whose: str = "the") -> T:
    """``fn()``, or a :class:`Refused` ("scoring took longer than ``whose`` limit of ...") once it
    has run ``seconds``."""
    watchdog = _Watchdog(seconds)
    try:
        try:
            result = fn()
        finally:
            watchdog.stop()
    except _Overtime:
        pass
    if watchdog.fired:
        raise Refused(f"scoring took longer than {whose} limit of {seconds:g} s")
    return result
