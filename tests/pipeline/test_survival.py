"""The writer survives what goes wrong around it: dead-letter files that cannot be written, errors in its loop.

Follows the pipeline's documented guarantee (docs/operations.md, "No silent loss"): a record leaves
the spool only when the backend acknowledged it or it was written to the dead-letter directory.
"""

from __future__ import annotations

import errno
import typing as t
from pathlib import Path

import pytest
from conftest import MakePipeline
from pipeline_fakes import FakeBackend, make_record

from flask_difylogstore.pipeline import read_dead_letters, writer
from flask_difylogstore.pipeline.lifecycle import wait_until
from flask_difylogstore.pipeline.writer import WRITERS, DeadLetters

REFUSED = {"node-1", "node-2"}


def refusing_backend() -> FakeBackend:
    backend = FakeBackend()
    backend.reject = lambda record: record.id in REFUSED
    return backend


def delivered_ids(backend: FakeBackend) -> set[str]:
    return {i for i, _ in backend.delivered()}


@pytest.fixture(autouse=True)
def _quick_dead_letter_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer, "DEAD_LETTER_RETRY_S", 0.1)


def test_dead_path_not_a_directory_keeps_records_and_writers(tmp_path: Path, make_pipeline: MakePipeline) -> None:
    directory = tmp_path / "spool"
    directory.mkdir()
    (directory / "dead").write_text("a file where the dead-letter directory should be")
    backend = refusing_backend()
    pipeline = make_pipeline(backend, directory=directory)
    pipeline.submit([make_record(1), make_record(2)])
    pipeline.submit([make_record(i) for i in range(3, 40)])
    assert wait_until(lambda: pipeline.stats()["undeliverable"] == 2, 10)
    assert wait_until(lambda: delivered_ids(backend) == {f"node-{i}" for i in range(3, 40)}, 10)
    # two refused records used to kill both writer threads; delivery must go on
    pipeline.submit([make_record(100)])
    assert wait_until(lambda: "node-100" in delivered_ids(backend), 10)
    stats = pipeline.stats()
    assert stats["writers_alive"] == WRITERS
    assert "dead_letter_error" in stats and "FileExistsError" in str(stats["dead_letter_error"])
    assert stats["unacknowledged"] == 2 and stats["dead_lettered"] == 0
    assert pipeline.flush(0.2) is False  # honest: two records are not delivered
    (directory / "dead").unlink()
    assert wait_until(lambda: pipeline.stats()["undeliverable"] == 0, 10)
    assert pipeline.flush(5)
    assert {d["record"]["id"] for d in read_dead_letters(directory)} == REFUSED
    assert pipeline.stats()["dead_lettered"] == 2


def test_disk_full_on_dead_letters_leaves_records_in_the_spool_for_the_next_process(
    tmp_path: Path, make_pipeline: MakePipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(self: DeadLetters, *args: t.Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(DeadLetters, "add", disk_full)
    directory = tmp_path / "spool"
    backend = refusing_backend()
    pipeline = make_pipeline(backend, directory=directory)
    pipeline.submit([make_record(i) for i in range(1, 10)])
    assert wait_until(lambda: pipeline.stats()["undeliverable"] == 2, 10)
    assert wait_until(lambda: len(delivered_ids(backend)) == 7, 10)
    assert "No space left" in str(pipeline.stats()["dead_letter_error"])
    pipeline.close(0.5)
    monkeypatch.undo()
    # the next process replays what was neither delivered nor dead-lettered
    later = FakeBackend()
    successor = make_pipeline(later, directory=directory)
    assert wait_until(lambda: delivered_ids(later) >= REFUSED, 15)  # the whole segment is replayed
    assert successor.flush(5)


def test_an_exception_in_the_loop_does_not_kill_the_writer(make_pipeline: MakePipeline) -> None:
    backend = FakeBackend()
    pipeline = make_pipeline(backend)
    original = pipeline.refill
    failures = {"left": 5}

    def flaky_refill() -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("I/O error reading a segment")
        original()

    pipeline.refill = flaky_refill  # type: ignore[method-assign]
    pipeline.submit([make_record(i) for i in range(20)])
    assert pipeline.flush(10)
    assert len(delivered_ids(backend)) == 20
    stats = pipeline.stats()
    assert stats["writer_errors"] == 5 and stats["writers_alive"] == WRITERS
    assert "I/O error reading a segment" in str(stats["last_error"])


def test_loop_errors_are_logged_rate_limited(make_pipeline: MakePipeline, caplog: pytest.LogCaptureFixture) -> None:
    backend = FakeBackend()
    pipeline = make_pipeline(backend)

    def broken_refill() -> None:
        raise RuntimeError("always broken")

    pipeline.refill = broken_refill  # type: ignore[method-assign]
    with caplog.at_level("ERROR", logger="flask_difylogstore.pipeline.writer"):
        assert wait_until(lambda: pipeline.writer.loop_errors >= 10, 20)
    lines = [r for r in caplog.records if "writer error" in r.getMessage()]
    # ERROR_LOG_INTERVAL_S is 10 s: the first error is logged, the next ones within 10 s are not
    assert 1 <= len(lines) < pipeline.writer.loop_errors
