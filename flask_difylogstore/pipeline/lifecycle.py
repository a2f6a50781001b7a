"""Threads, wake-ups and process events, safe under ``fork`` and gevent.

* Fork (Celery prefork, gunicorn preload): a child must not inherit the parent's writer thread,
  queue or spool files. ``os.register_at_fork`` resets every live pipeline in the child, which
  starts its own writer and segments on first use; the parent's records stay the parent's.
* gevent: with ``threading`` monkey-patched, a "thread" is a greenlet, and a blocking ``fsync`` or
  backend call in it would stall the hub. The writer and the fsync loop therefore run in real OS
  threads started with the unpatched ``_thread`` module, and their wake-ups use unpatched locks.
  Waits on the caller's side (``flush`` / ``close``) poll with ``time.sleep``, which yields to the
  hub when patched.
* Exit: ``atexit`` and Celery's worker shutdown signals flush within the shutdown timeout.
"""

from __future__ import annotations

import _thread
import atexit
import contextlib
import importlib
import logging
import os
import threading
import time
import typing as t
import weakref

logger = logging.getLogger(__name__)


class Closable(t.Protocol):
    shutdown_timeout_s: float

    def close(self, timeout: float | None = None) -> None: ...
    def after_fork_in_child(self) -> None: ...


def gevent_patched() -> bool:
    """Whether gevent has monkey-patched ``threading`` in this process."""
    import sys

    if "gevent" not in sys.modules:
        return False
    try:
        from gevent import monkey

        return bool(monkey.is_module_patched("threading"))
    except Exception:
        return False


def _original(module: str, name: str) -> t.Any:
    if gevent_patched():
        from gevent import monkey

        return monkey.get_original(module, name)
    return getattr(importlib.import_module(module), name)


def native_lock() -> _thread.LockType:
    """A lock of the OS, even when gevent patched ``threading``."""
    return t.cast(_thread.LockType, _original("_thread", "allocate_lock")())


#: Yields before a caller's thread gives up spinning and blocks on a busy pipeline lock.
SPIN_LIMIT = 20


def acquire(lock: _thread.LockType) -> None:
    """Take ``lock`` on a caller's thread without forming a lock convoy.

    A blocking ``acquire`` hands a released lock to a waiter that does not hold the GIL; the
    others then queue behind that hand-over, and with eight saving threads one preempted holder
    made a few percent of ``save()`` calls wait milliseconds. Trying again after ``sleep(0)``
    (which lets the holder run; a cooperative yield under gevent) keeps the lock with threads
    that can use it at once. A holder slow for longer than the spin means blocking after all.
    """
    if lock.acquire(False):
        return
    for _ in range(SPIN_LIMIT):
        time.sleep(0)
        if lock.acquire(False):
            return
    lock.acquire()


class Wakeup:
    """An auto-reset event on a native lock: ``set`` never blocks, ``wait`` sleeps the OS thread."""

    def __init__(self) -> None:
        self._lock = native_lock()
        self._lock.acquire()

    def set(self) -> None:
        with contextlib.suppress(RuntimeError):  # already set
            self._lock.release()

    def wait(self, timeout: float) -> bool:
        return self._lock.acquire(timeout=max(0.0, min(timeout, 3600.0)))


class NativeThread:
    """A daemon OS thread (never a greenlet) with a flag telling when it ended."""

    def __init__(self, target: t.Callable[[], None], name: str) -> None:
        self.name = name
        self._target = target
        self.finished = False
        self.ident: int | None = None

    def start(self) -> None:
        if gevent_patched():
            _original("_thread", "start_new_thread")(self._run, ())
        else:
            threading.Thread(target=self._run, name=self.name, daemon=True).start()

    def _run(self) -> None:
        self.ident = _thread.get_ident()
        try:
            self._target()
        except BaseException:
            logger.exception("flask-difylogstore: %s thread crashed", self.name)
        finally:
            self.finished = True

    def join(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.finished and time.monotonic() < deadline:
            time.sleep(0.005)
        return self.finished


def wait_until(predicate: t.Callable[[], bool], timeout: float | None, step: float = 0.005) -> bool:
    """Poll ``predicate`` until true or ``timeout`` passes; cooperative under gevent."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while not predicate():
        if deadline is not None and time.monotonic() >= deadline:
            return predicate()
        time.sleep(step)
    return True


_live: weakref.WeakSet[t.Any] = weakref.WeakSet()
_hooked = False


def register(pipeline: Closable) -> None:
    """Track ``pipeline`` for the fork, exit and Celery hooks (installed once per process)."""
    global _hooked
    _live.add(pipeline)
    if _hooked:
        return
    _hooked = True
    os.register_at_fork(after_in_child=_after_fork_in_child)
    atexit.register(close_all)
    _connect_celery()


def unregister(pipeline: Closable) -> None:
    _live.discard(pipeline)


def _after_fork_in_child() -> None:
    for pipeline in list(_live):
        try:
            pipeline.after_fork_in_child()
        except Exception:
            logger.exception("flask-difylogstore: resetting the write pipeline after fork failed")


def close_all(*_args: t.Any, **_kwargs: t.Any) -> None:
    """Flush and stop every live pipeline within its shutdown timeout."""
    for pipeline in list(_live):
        try:
            pipeline.close(pipeline.shutdown_timeout_s)
        except Exception:
            logger.exception("flask-difylogstore: closing the write pipeline failed")


def _connect_celery() -> None:
    try:
        from celery import signals  # type: ignore[import-not-found, unused-ignore]
    except Exception:
        return
    signals.worker_process_shutdown.connect(close_all, weak=False)
    signals.worker_shutdown.connect(close_all, weak=False)


def native_sleep(seconds: float) -> None:
    """Sleep the OS thread (for the pipeline's own threads; never call it on the hub)."""
    _original("time", "sleep")(seconds)


def offload(func: t.Callable[[], None]) -> None:
    """Run blocking ``func`` (an fsync) without stalling the gevent hub: in its thread pool when patched."""
    if gevent_patched():
        import gevent

        gevent.get_hub().threadpool.apply(func)
    else:
        func()
