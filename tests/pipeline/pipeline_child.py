"""Child processes of the crash and gevent tests (run as a script by the tests).

pipeline_child.py crash <spool_dir> <out_file>    save forever, print each accepted record
pipeline_child.py replay <spool_dir> <out_file>   replay what is left, flush, print stats
pipeline_child.py crash-sls <spool_dir> <endpoint> <project>    the same with the aliyun_sls backend
pipeline_child.py replay-sls <spool_dir> <endpoint> <project>   (a LocalSLSServer's endpoint)
pipeline_child.py gevent <spool_dir>              saves under monkey-patching, print hub stalls
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
    """Its write blocks the OS thread (like a C-level SDK call would), not just the greenlet."""

    def write(self, records):  # type: ignore[no-untyped-def]
        monkey.get_original("time", "sleep")(0.2)
        return super().write(records)


def run_gevent(spool_dir: Path) -> None:
    import gevent

    backend = BlockingBackend()
    settings = PipelineSettings(flush_interval_ms=10, fsync_interval_ms=0, max_retry_delay_s=0.2)
    pipeline = SpoolingPipeline(backend, settings, spool_dir)
    gaps: list[float] = []
    running = True

    def tick() -> None:
        last = time.perf_counter()
        while running:
            gevent.sleep(0.002)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = gevent.spawn(tick)
    saves: list[float] = []
    for i in range(1000):
        started = time.perf_counter()
        pipeline.submit([make_record(i)])
        saves.append(time.perf_counter() - started)
        if i % 20 == 0:
            gevent.sleep(0.001)
    flushed = pipeline.flush(20)
    running = False
    ticker.join()
    pipeline.close(2)
    print(
        json.dumps(
            {
                "flushed": flushed,
                "delivered": len(backend.delivered()),
                "max_tick_gap": max(gaps),
                "max_save": max(saves),
                "writer_off_hub": threading.main_thread().ident not in backend.thread_ids,
                "ticks": len(gaps),
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
