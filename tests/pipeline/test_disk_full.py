"""The spool on a nearly full or full disk: a healthy backend still gets every record; errors name the disk.

Follows docs/operations.md ("Disk full or spool full", "What happens when") and the Linux
``statvfs(3)`` contract the spool uses to check for room (``f_bavail * f_frsize`` bytes free).
"""

from __future__ import annotations

import logging
import os
import typing as t
from pathlib import Path

import pytest
from conftest import MakePipeline
from pipeline_fakes import FakeBackend, make_record

from flask_difylogstore.errors import BackendUnavailableError
from flask_difylogstore.pipeline.lifecycle import wait_until


def free_space(monkeypatch: pytest.MonkeyPatch, free: int) -> None:
    """Make every file system report ``free`` bytes available."""
    real = os.fstatvfs

    def reported(fd: int) -> os.statvfs_result:
        stat = real(fd)
        return os.statvfs_result((stat.f_bsize, 4096, stat.f_blocks, free // 4096, free // 4096, *stat[5:]))

    monkeypatch.setattr(os, "fstatvfs", reported)


def log_lines(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(1 for r in caplog.records if text in r.getMessage())


def test_nearly_full_disk_uses_smaller_segments(
    tmp_path: Path, make_pipeline: MakePipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    free_space(monkeypatch, 3 * 1024 * 1024)  # room for no 8 MB segment (it needs twice its size)
    backend = FakeBackend()
    pipeline = make_pipeline(backend, directory=tmp_path / "spool")
    for i in range(300):
        pipeline.submit([make_record(i)])
    assert pipeline.flush(20)
    stats = pipeline.stats()
    assert len(backend.delivered()) == 300
    assert stats["rejected"] == 0 and stats["unspooled"] == 0  # every record had its spool copy


def test_full_disk_with_a_healthy_backend_still_delivers(
    make_pipeline: MakePipeline, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    backend = FakeBackend()
    pipeline = make_pipeline(backend)
    assert pipeline.flush(5)
    free_space(monkeypatch, 40 * 1024)
    with caplog.at_level(logging.ERROR):
        for i in range(200):
            pipeline.submit([make_record(i)])
        assert pipeline.flush(20)
    stats = pipeline.stats()
    assert len(backend.delivered()) == 200
    assert stats["rejected"] == 0 and stats["unspooled"] > 0
    assert log_lines(caplog, "spool error") <= 2  # at most one line per 10 s, not one per save


def test_full_disk_with_the_backend_down_refuses_at_once_and_names_the_disk(
    make_pipeline: MakePipeline, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    backend = FakeBackend()
    backend.go_down()
    pipeline = make_pipeline(backend, overflow_policy="block", overflow_block_timeout_s=600, segment_bytes=64 * 1024)
    pipeline.submit([make_record(0)])
    assert wait_until(lambda: pipeline.breaker.state != "closed" or pipeline.writer.consecutive_failures > 0, 10)
    free_space(monkeypatch, 40 * 1024)
    errors: list[str] = []
    with caplog.at_level(logging.ERROR):
        for i in range(1, 201):  # the segments already there fill up first
            try:
                pipeline.submit([make_record(i)])  # a refusal does not wait out the 600 s block timeout
            except BackendUnavailableError as exc:
                errors.append(str(exc))
    assert len(errors) > 150
    assert "the disk holding the log-store spool" in errors[0] and "free disk space" in errors[0]
    assert "LOGSTORE_SPOOL_MAX_BYTES" not in errors[0]
    stats = pipeline.stats()
    assert stats["rejected"] == len(errors)
    assert stats["spool_errors"] <= len(errors) + 5  # one append attempt per refused save, no retry loop
    assert log_lines(caplog, "refusing") <= 2 and log_lines(caplog, "spool error") <= 2


def test_drop_newest_logs_at_most_every_ten_seconds(
    make_pipeline: MakePipeline, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    backend = FakeBackend()
    backend.go_down()
    pipeline = make_pipeline(backend, overflow_policy="drop_newest", spool_max_bytes=1024 * 1024)
    with caplog.at_level(logging.ERROR):
        for i in range(400):  # ~2 MB of 5 KB records into a 1 MB spool
            pipeline.submit([make_record(i)])
    dropped = t.cast(int, pipeline.stats()["dropped"])
    assert dropped > 100
    assert log_lines(caplog, "dropping new records") == 1
    assert "LOGSTORE_SPOOL_MAX_BYTES" in next(r.getMessage() for r in caplog.records if "dropping" in r.getMessage())
