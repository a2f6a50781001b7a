"""Child processes of the crash and gevent tests (run as a script by the tests).

pipeline_child.py crash <spool_dir> <out_file>    save forever, print each accepted record
pipeline_child.py replay <spool_dir> <out_file>   replay what is left, flush, print stats
pipeline_child.py crash-sls <spool_dir> <endpoint> <project>    the same with the aliyun_sls backend
pipeline_child.py replay-sls <spool_dir> <endpoint> <project>   (a LocalSLSServer's endpoint)
pipeline_child.py gevent <spool_dir>              saves under monkey-patching, print the writes that
                                                  blocked the hub
"""

from __future__ import annotations

import sys

if len(sys.argv) > 1 and sys.argv[1] == "gevent":
    from gevent import monkey

    monkey.patch_all()

import json
import threading
import time
import typing as t
from pathlib import Path

from pipeline_fakes import FakeBackend, FileBackend, make_record

from flask_difylogstore.pipeline import SpoolingPipeline
from flask_difylogstore.settings import PipelineSettings

SETTINGS = PipelineSettings(flush_interval_ms=20, fsync_interval_ms=20, max_retry_delay_s=0.2)


def sls_backend(endpoint: str, project: str) -> t.Any:
    from flask_difylogstore.backends.aliyun_sls import AliyunSLSBackend
    from flask_difylogstore.settings import AliyunSLSSettings

    settings = AliyunSLSSettings(
        access_key_id="local-ak",
        access_key_secret="local-sk",  # type: ignore[arg-type]
        endpoint=endpoint,
        region="cn-hangzhou",
        project_name=project,
    )
    return AliyunSLSBackend(settings)


def crash(spool_dir: Path, backend: t.Any) -> None:
    pipeline = SpoolingPipeline(backend, SETTINGS, spool_dir, segment_bytes=256 * 1024)
    pipeline.start()
    i = 0
    while True:
        record = make_record(i)
        pipeline.submit([record])
        sys.stdout.write(f"{record.id} {record.log_version}\n")
        sys.stdout.flush()
        i += 1
        if i % 50 == 0:
            time.sleep(0.005)


def replay(spool_dir: Path, backend: t.Any) -> None:
    pipeline = SpoolingPipeline(backend, SETTINGS, spool_dir)
    pipeline.start()
    ok = pipeline.flush(20)
    stats = pipeline.stats()
    pipeline.close(1)
    print(json.dumps({"flushed": ok, "replayed": stats["replayed"], "skipped_bytes": stats["skipped_bytes"]}))


class BlockingBackend(FakeBackend):
    """Its write blocks its OS thread (as a C-level SDK call would) until the hub has visibly run meanwhile.

    The hub's ticker greenlet counts ``ticks``. A write holds its OS thread (the original, unpatched
    sleep) until the count has moved on by ``HUB_TICKS``: that happens only when the hub keeps
    running greenlets while the backend blocks. A write that waits ``STALL_DEADLINE_S`` without that
    evidence counts as a stall (the hub was blocked by it), and the later writes no longer wait.
    """

    HUB_TICKS = 3
    STALL_DEADLINE_S = 20.0

    def __init__(self) -> None:
        super().__init__()
        self.ticks = 0
        self.writes_with_hub_progress = 0
        self.stalled_writes = 0

    def write(self, records):  # type: ignore[no-untyped-def]
        os_sleep = monkey.get_original("time", "sleep")
        os_monotonic = monkey.get_original("time", "monotonic")
        start, deadline = self.ticks, os_monotonic() + self.STALL_DEADLINE_S
        while not self.stalled_writes and self.ticks < start + self.HUB_TICKS:
            if os_monotonic() > deadline:
                self.stalled_writes += 1
            os_sleep(0.001)
        if not self.stalled_writes:
            self.writes_with_hub_progress += 1
        return super().write(records)


def run_gevent(spool_dir: Path) -> None:
    import gevent

    backend = BlockingBackend()
    settings = PipelineSettings(flush_interval_ms=10, fsync_interval_ms=0, max_retry_delay_s=0.2)
    pipeline = SpoolingPipeline(backend, settings, spool_dir)
    running = True

    def tick() -> None:
        while running:
            gevent.sleep(0.002)
            backend.ticks += 1

    ticker = gevent.spawn(tick)
    for i in range(1000):
        pipeline.submit([make_record(i)])
        if i % 20 == 0:
            gevent.sleep(0.001)
    flushed = pipeline.flush(20)
    pipeline.close(2)
    running = False
    ticker.join()
    print(
        json.dumps(
            {
                "flushed": flushed,
                "delivered": len(backend.delivered()),
                "writes": backend.calls,
                "writes_with_hub_progress": backend.writes_with_hub_progress,
                "stalled_writes": backend.stalled_writes,
                "writer_off_hub": threading.main_thread().ident not in backend.thread_ids,
                "ticks": backend.ticks,
            }
        )
    )


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "crash":
        crash(Path(sys.argv[2]), FileBackend(Path(sys.argv[3]), delay_s=0.03))
    elif mode == "replay":
        replay(Path(sys.argv[2]), FileBackend(Path(sys.argv[3])))
    elif mode == "crash-sls":
        crash(Path(sys.argv[2]), sls_backend(sys.argv[3], sys.argv[4]))
    elif mode == "replay-sls":
        replay(Path(sys.argv[2]), sls_backend(sys.argv[3], sys.argv[4]))
    else:
        run_gevent(Path(sys.argv[2]))
