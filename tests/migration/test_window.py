"""--since / --until: whole UTC days, inclusive ends, ISO datetimes with offsets; migrated versions."""

from __future__ import annotations

from datetime import datetime, timedelta

import orjson
import pytest
from flask import Flask

from flask_difylogstore.backends.base import Scope
from flask_difylogstore.errors import DifyLogStoreError
from flask_difylogstore.migration.convert import clock_at, migrated_version
from flask_difylogstore.migration.selection import Window
from flask_difylogstore.records import FINAL_BIT, RecordKind, default_clock, version_time_ms
from tests.migration.conftest import Env, backend_of, cli
from tests.migration.seed import seed

US = timedelta(microseconds=1)


def test_dates_are_whole_utc_days_and_until_is_inclusive() -> None:
    window = Window.parse("2026-01-31", "2026-01-31")
    assert window == Window(datetime(2026, 1, 31), datetime(2026, 2, 1))


def test_datetimes_are_inclusive_and_offsets_become_utc() -> None:
    window = Window.parse("2026-01-31T08:00:00+08:00", "2026-01-31T12:30:00Z")
    assert window.since == datetime(2026, 1, 31, 0, 0)
    assert window.until == datetime(2026, 1, 31, 12, 30) + US
    assert Window.parse(None, "2026-01-31T23:59:59.999999").until == datetime(2026, 2, 1)


@pytest.mark.parametrize(("since", "until"), [("2026-02-01", "2026-01-31"), ("yesterday", None), (None, "2026-13-01")])
def test_bad_windows_are_refused(since: str | None, until: str | None) -> None:
    with pytest.raises(DifyLogStoreError):
        Window.parse(since, until)


def test_migrated_versions_come_from_the_row_and_lose_to_live_writes() -> None:
    created = datetime(2026, 1, 31, 10, 0, 0, 123456)
    finished = created + timedelta(seconds=2)
    running = migrated_version(RecordKind.RUN, {"created_at": created, "status": "running"})
    done = migrated_version(RecordKind.RUN, {"created_at": created, "finished_at": finished, "status": "succeeded"})
    assert version_time_ms(running) == version_time_ms(clock_at(created)) == 1769853600123
    assert done & FINAL_BIT and not running & FINAL_BIT and done > running
    assert done == migrated_version(
        RecordKind.RUN, {"created_at": created, "finished_at": finished, "status": "succeeded"}
    )  # idempotent
    assert default_clock.version_for(RecordKind.RUN, "succeeded") > done  # a later live save wins
    assert default_clock.version_for(RecordKind.RUN, "running") < done  # but never a non-final one


EDGES = {
    "before": datetime(2026, 1, 30, 23, 59, 59, 999999),
    "first": datetime(2026, 1, 31, 0, 0, 0),
    "last": datetime(2026, 1, 31, 23, 59, 59, 999999),
    "after": datetime(2026, 2, 1, 0, 0, 0),
}


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--since", "2026-01-31", "--until", "2026-01-31"], {"first", "last"}),
        (["--until", "2026-01-31T08:00:00+08:00"], {"before", "first"}),
        (["--since", "2026-02-01T08:00:00+08:00"], {"after"}),
        (["--since", "2026-01-30T23:59:59.999999", "--until", "2026-01-31T00:00:00"], {"before", "first"}),
        (["--since", "2026-01-31T00:00:00.000001Z", "--until", "2026-02-01"], {"last", "after"}),
    ],
)
def test_day_boundaries_against_postgresql(memory_app: Flask, env: Env, args: list[str], expected: set[str]) -> None:
    run_of: dict[str, str] = {}
    for number, (name, moment) in enumerate(EDGES.items()):
        run_of[
            seed(
                env.engine,
                runs=1,
                nodes_per_run=0,
                start=moment,
                tenants=1,
                apps_per_tenant=1,
                seed_value=number,
            ).run_ids[0]
        ] = name
    dry = cli(memory_app, "migrate", "--kind", "runs", "--dry-run", "--json", *args)
    assert dry.exit_code == 0, dry.output
    assert orjson.loads(dry.stdout)["kinds"][0]["selected"] == len(expected)
    assert cli(memory_app, "migrate", "--kind", "runs", *args).exit_code == 0
    stored = backend_of(memory_app).get_latest(RecordKind.RUN, list(run_of), Scope.unscoped())
    assert {run_of[id_] for id_ in stored} == expected
