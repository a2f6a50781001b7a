"""Provisioning before the first write, bounded at startup, retried in the background when lenient.

SLS never indexes data written before its index exists, so writers wait on :meth:`ProvisioningGate.wait`
before their first batch. Startup waits at most ``LOGSTORE_STARTUP_TIMEOUT``: with
``LOGSTORE_STARTUP_STRICT`` a failure raises, otherwise it is logged, the backend is reported
unhealthy, and a daemon thread keeps retrying with back-off (1 s doubling up to ``retry_max``, the
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
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self.state: State = "pending" if enabled else "disabled"
        self.report: ProvisionReport | None = None
        self.last_error: str | None = None
        self.attempts = 0
        if not enabled:
            self._done.set()

    def start(self, *, timeout: float, strict: bool) -> None:
        """Provision in a daemon thread and wait up to ``timeout``; in strict mode raise on failure."""
        if self.state == "disabled":
            return
        self._thread = threading.Thread(target=self._run, name="difylogstore-provision", daemon=True)
        self._thread.start()
        finished = self._done.wait(timeout)
        if strict and not finished:
            self._stop.set()
            reason = self.last_error or f"not finished after {timeout:g}s"
            raise ProvisioningError(f"provisioning the {self._backend.name} backend failed: {reason}")
        if not finished:
            logger.warning(
                "flask-difylogstore: %s backend not provisioned yet (%s); writes wait, retrying in the background",
                self._backend.name,
                self.last_error or "still running",
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
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, self._retry_max)
                continue
            self.state = "done"
            self.last_error = None
            self._done.set()
            return

    def wait(self, timeout: float | None = None) -> bool:
        """Block until provisioning succeeded (``True``) or ``timeout`` passed (``False``)."""
        return self._done.wait(timeout)

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
        return {
            "state": self.state,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "checked_at": time.time(),
        }
