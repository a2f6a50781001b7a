"""Provisioning before the first write, bounded at startup, retried in the background when lenient.

SLS never indexes data written before its index exists, so writers wait on :meth:`ProvisioningGate.wait`
before their first batch. With ``LOGSTORE_STARTUP_STRICT`` startup waits at most
``LOGSTORE_STARTUP_TIMEOUT`` and raises as soon as an attempt fails; otherwise it waits at most
``LENIENT_STARTUP_WAIT_S``, a failure is logged, the backend is reported unhealthy, and a daemon
thread keeps retrying with back-off (1 s doubling up to ``retry_max``, the
pipeline's ``LOGSTORE_MAX_RETRY_DELAY``, so writes start within that long of the backend returning).
"""

from __future__ import annotations

import logging
import threading
import time
import typing as t

from flask_difylogstore._settings_errors import mask_url_credentials
from flask_difylogstore.backends.base import LogBackend, ProvisionReport
from flask_difylogstore.errors import ProvisioningError

logger = logging.getLogger(__name__)

State = t.Literal["pending", "done", "failed", "disabled"]

#: Longest time a lenient startup waits for provisioning before going on with it in the background.
LENIENT_STARTUP_WAIT_S = 2.0


class ProvisioningGate:
    """Runs ``backend.provision()`` once, successfully, and lets writers wait for it."""

    def __init__(
        self,
        backend: LogBackend,
        *,
        enabled: bool = True,
        retry_initial: float = 1.0,
        retry_max: float = 4.0,
    ) -> None:
        self._backend = backend
        self._done = threading.Event()
        self._attempted = threading.Event()  # the first attempt finished, one way or the other
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self.state: State = "pending" if enabled else "disabled"
        self.report: ProvisionReport | None = None
        self.last_error: str | None = None
        self.attempts = 0
        self.deferred = False
        self.pending_changes: list[str] | None = None
        self._start_lock = threading.Lock()
        if not enabled:
            self._done.set()

    def defer(self) -> None:
        """Provision only when something waits for it (``wait``): for commands that may only look."""
        if self.state != "disabled":
            self.deferred = True

    def _ensure_thread(self) -> bool:
        """Start the provisioning thread once; ``False`` when it was already started."""
        with self._start_lock:
            if self._thread is not None or self.state == "disabled":
                return False
            self._thread = threading.Thread(target=self._run, name="difylogstore-provision", daemon=True)
            self._thread.start()
            return True

    def start(self, *, timeout: float, strict: bool) -> None:
        """Provision in a daemon thread and wait for the first attempt's outcome.

        Strict: wait up to ``timeout`` and raise as soon as the first attempt failed (a refused
        connection is known at once) or when it is still running after ``timeout``. Lenient: wait
        at most ``LENIENT_STARTUP_WAIT_S`` (and not at all past a failed first attempt), then
        go on while provisioning is retried in the background.
        """
        if self.state == "disabled":
            return
        self.deferred = False
        self._ensure_thread()
        waited = timeout if strict else min(timeout, LENIENT_STARTUP_WAIT_S)
        self._attempted.wait(waited)
        if self.ready:
            return
        if strict:
            self._stop.set()
            reason = self.last_error or f"not finished after {timeout:g}s (LOGSTORE_STARTUP_TIMEOUT)"
            raise ProvisioningError(f"provisioning the {self._backend.name} backend failed: {reason}")
        logger.warning(
            "flask-difylogstore: %s backend not provisioned yet (%s); writes wait in the spool, retrying in the "
            "background",
            self._backend.name,
            self.last_error or f"still running after {waited:g}s",
        )

    def _run(self) -> None:
        delay = self._retry_initial
        while not self._stop.is_set():
            self.attempts += 1
            try:
                self.report = self._backend.provision()
            except Exception as exc:
                self.state = "failed"
                self.last_error = mask_url_credentials(f"{type(exc).__name__}: {exc}")
                logger.warning(
                    "flask-difylogstore: provisioning %s failed (attempt %d): %s",
                    self._backend.name,
                    self.attempts,
                    self.last_error,
                )
                self._attempted.set()
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, self._retry_max)
                continue
            self.state = "done"
            self.last_error = None
            self._done.set()
            self._attempted.set()
            return

    def wait(self, timeout: float | None = None) -> bool:
        """Block until provisioning succeeded (``True``) or ``timeout`` passed (``False``).

        A deferred gate starts provisioning (in the background) on the first wait.
        """
        if self.deferred and not self._done.is_set():
            self._ensure_thread()
        return self._done.wait(timeout)

    def check(self) -> bool:
        """Whether the backend is provisioned, found by a dry run when this process did not provision.

        Changes nothing; ``pending_changes`` lists what ``flask logstore init`` would do.
        """
        if self._done.is_set():
            return True
        if not self.deferred or self._thread is not None:
            return False
        try:
            report = self._backend.provision(dry_run=True)
        except Exception as exc:
            self.last_error = mask_url_credentials(f"{type(exc).__name__}: {exc}")
            return False
        self.pending_changes = [f"{c.action} {c.target}" for c in report.changes if c.action != "keep"]
        if self.pending_changes:
            self.last_error = (
                f"{len(self.pending_changes)} item(s) not provisioned yet ({', '.join(self.pending_changes[:5])}); "
                "run `flask logstore init`"
            )
            return False
        self.last_error = None
        return True

    @property
    def ready(self) -> bool:
        return self._done.is_set()

    def stop(self) -> None:
        self._stop.set()

    def run_now(self, *, dry_run: bool = False) -> ProvisionReport:
        """Provision synchronously (the ``flask logstore init`` command)."""
        report = self._backend.provision(dry_run=dry_run)
        if not dry_run:
            self.report = report
            self.state = "done"
            self.last_error = None
            self._done.set()
        return report

    def snapshot(self) -> dict[str, t.Any]:
        state = self.state
        if self.deferred and self._thread is None and state == "pending":
            state = "done" if self.pending_changes == [] else "pending"
        return {
            "state": state,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "checked_at": time.time(),
        }
