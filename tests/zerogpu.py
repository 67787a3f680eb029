"""A stand-in for ZeroGPU's ``spaces.GPU``, for tests: what ``spaces`` 0.51.3 does around a call, on the CPU.

Read from its source (``spaces/zero/decorator.py``, ``zero/wrappers.py``, ``zero/client.py``):
- the duration (seconds, or a callable given the call's own arguments, default 60) is computed in
  the calling process before anything runs, and a duration above what the visitor may use is refused
  ("ZeroGPU illegal duration" / quota exceeded), without running the function;
- the function runs in a worker process forked from the caller, its arguments and its result pickled
  across (the worker inherits the caller's memory: what was loaded at start-up);
- a ``gr.Error`` raised in the worker reaches the caller as itself, message included; any other
  exception only as "ZeroGPU worker error" with the exception's class name;
- the GPU is the worker's for ``duration`` seconds: a worker still running then is killed
  ("GPU task aborted").

``install(quota=...)`` puts it in ``sys.modules["spaces"]``; every call is recorded in ``CALLS``.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import pickle
import sys
import time
import traceback
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import gradio as gr

DEFAULT_DURATION = 60  # spaces.zero.client.DEFAULT_SCHEDULE_DURATION


@dataclass
class Call:
    """One call as the stand-in saw it: the duration asked, the worker's pid, the seconds it ran, how it
    ended, and ``PROBE()`` when the worker started and when it ended."""

    duration: float
    pid: int | None = None
    seconds: float | None = None
    outcome: str = "refused"
    probes: tuple = ()


CALLS: list[Call] = []
QUOTA = [300.0]  # seconds one call may ask (a free account's daily quota, about 5 min)
PROBE: list[Callable[[], object]] = [lambda: None]  # what a test wants noted around the worker's run


def _worker(task: Callable, payload: bytes, conn) -> None:
    args, kwargs = pickle.loads(payload)
    try:
        result = ("ok", task(*args, **kwargs))
    except gr.Error as exc:
        result = ("gradio", exc)
    except Exception as exc:  # noqa: BLE001 - the real worker prints the traceback and sends the class name
        traceback.print_exc()
        result = ("error", type(exc).__name__)
    try:
        conn.send((os.getpid(), *result))
    except Exception as exc:  # noqa: BLE001 - an unpicklable result
        conn.send((os.getpid(), "error", type(exc).__name__))


def GPU(task: Callable | None = None, *, duration: float | Callable | None = None, size: str | None = None) -> Callable:
    if task is None:
        return functools.partial(GPU, duration=duration, size=size)

    @functools.wraps(task)
    def gradio_handler(*args, **kwargs):
        seconds = float((duration(*args, **kwargs) if callable(duration) else duration) or DEFAULT_DURATION)
        call = Call(seconds)
        CALLS.append(call)
        if seconds > QUOTA[0]:
            raise gr.Error(f"The requested GPU duration ({seconds:.0f}s) is larger than the maximum allowed",
                           title="ZeroGPU illegal duration")
        payload = pickle.dumps((args, kwargs))
        context = multiprocessing.get_context("fork")
        receive, send = context.Pipe(duplex=False)
        worker = context.Process(target=_worker, args=(task, payload, send), daemon=True)
        before = PROBE[0]()
        start = time.monotonic()
        worker.start()
        send.close()
        if not receive.poll(seconds):
            worker.kill()
            worker.join()
            call.seconds, call.outcome, call.probes = time.monotonic() - start, "aborted", (before, PROBE[0]())
            raise gr.Error("GPU task aborted", title="ZeroGPU worker error")
        call.pid, kind, value = receive.recv()
        worker.join()
        call.seconds, call.outcome, call.probes = time.monotonic() - start, kind, (before, PROBE[0]())
        if kind == "ok":
            return value
        if kind == "gradio":
            raise value
        raise gr.Error(value, title="ZeroGPU worker error")

    return gradio_handler


@contextlib.contextmanager
def install(quota: float = 300.0) -> Iterator[types.ModuleType]:
    """``import spaces`` gives this stand-in while the context lasts."""
    module = types.ModuleType("spaces")
    module.GPU = GPU
    previous = sys.modules.get("spaces")
    sys.modules["spaces"] = module
    QUOTA[0] = quota
    CALLS.clear()
    try:
        yield module
    finally:
        PROBE[0] = lambda: None
        if previous is None:
            sys.modules.pop("spaces", None)
        else:
            sys.modules["spaces"] = previous
