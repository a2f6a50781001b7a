"""The documentation's examples, executed, so the pages cannot drift from the code.

Conventions for every page under ``docs/``:

* A fenced block tagged ``python`` is executed. The blocks of one page run in order in one
  namespace (a later block may use what an earlier one defined), in a temporary working directory
  with none of the developer's settings in the environment.
* A block that is only part of a program (an excerpt of Dify's ``app_factory.py``, a signature)
  gets the marker ``<!-- docs-test: skip -->`` on the line before it (a blank line in between is
  fine). Such comments are invisible on GitHub and in the built site.
* An Aliyun SLS console query (``search | SQL``) is preceded by
  ``<!-- docs-test: sls LOGSTORE CHECK -->``: it runs on the local SLS-compatible server against the
  logstore ``LOGSTORE`` of a provisioned backend holding sample workflow runs, and ``CHECK`` names
  the function in :data:`SLS_CHECKS` that compares its rows with what the repositories return.
* A Kibana Dev Tools request (``METHOD /path`` then a JSON body) is preceded by
  ``<!-- docs-test: es CHECK -->`` and runs the same way on the local Elasticsearch-compatible
  server (:data:`ES_CHECKS`).
* ``<app-id>`` in a query stands for the id of the sample app.

The sample data: runs of two apps written through the repositories like Dify's engine writes them
(several snapshots per entity, some saved out of order, some runs failing), then every run of the
second app deleted, so a query that forgets the latest-version rule or the deletion marker gets
different numbers than the repositories.
"""

from __future__ import annotations

import json
import random
import re
import time
import typing as t
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
MKDOCS_YML = DOCS.parent / "mkdocs.yml"
APP_ID_PLACEHOLDER = "<app-id>"

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`]*)$")
_MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<spec>.*?)\s*-->\s*$")

#: Python blocks on pages that carry no ``docs-test: skip`` marker yet but are excerpts, keyed by
#: (page, first line of the block). An entry that no longer matches a block fails the suite.
KNOWN_FRAGMENTS: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    lang: str
    code: str
    marker: str | None

    @property
    def first_line(self) -> str:
        return next((line.strip() for line in self.code.splitlines() if line.strip()), "")

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def parse_blocks(path: Path) -> list[Block]:
    """Every fenced code block of a Markdown page, with the ``docs-test`` marker before it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    marker: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        found = _MARKER.match(line)
        if found:
            marker = found.group("spec")
            i += 1
            continue
        fence = _FENCE.match(line)
        if fence is None:
            if line.strip():
                marker = None
            i += 1
            continue
        indent, token = fence.group("indent"), fence.group("fence")
        lang = (fence.group("info").split() or [""])[0].lower()
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            closing = lines[j].strip()
            if closing.startswith(token[0] * len(token)) and not closing.strip(token[0]):
                break
            body.append(lines[j][len(indent) :] if lines[j].startswith(indent) else lines[j].lstrip())
            j += 1
        blocks.append(Block(path.name, i + 1, lang, "\n".join(body) + "\n", marker))
        marker = None
        i = j + 1
    return blocks


def all_blocks() -> list[Block]:
    return [block for page in sorted(DOCS.glob("*.md")) for block in parse_blocks(page)]


def python_pages() -> list[str]:
    return sorted({b.page for b in all_blocks() if b.lang == "python"})


def marked(kind: str) -> list[Block]:
    return [b for b in all_blocks() if b.marker and b.marker.split()[0] == kind]


def is_skipped(block: Block) -> bool:
    return (block.marker or "").split()[:1] == ["skip"] or (block.page, block.first_line) in KNOWN_FRAGMENTS


# -- Python blocks ------------------------------------------------------------------------------


@pytest.mark.parametrize("page", python_pages())
def test_python_blocks_run(page: str) -> None:
    namespace: dict[str, t.Any] = {"__name__": f"docs_{page.removesuffix('.md').replace('-', '_')}"}
    ran = skipped = 0
    try:
        for block in parse_blocks(DOCS / page):
            if block.lang != "python":
                continue
            if is_skipped(block):
                skipped += 1
                continue
            try:
                exec(compile(block.code, block.id, "exec"), namespace)
            except Exception as exc:
                raise AssertionError(f"the example at docs/{block.id} failed: {type(exc).__name__}: {exc}") from exc
            ran += 1
        hook = PAGE_CHECKS.get(page)
        if hook is not None:
            hook(namespace)
    finally:
        _close_apps(namespace)
    assert ran or skipped, f"docs/{page} has no python block left"


def _close_apps(namespace: dict[str, t.Any]) -> None:
    """Flush and stop the extension of every Flask app an example created."""
    from flask import Flask

    from flask_difylogstore import DifyLogStore

    for value in list(namespace.values()):
        if isinstance(value, Flask):
            DifyLogStore.close(value)


def test_known_fragments_still_exist() -> None:
    present = {(b.page, b.first_line) for b in all_blocks() if b.lang == "python"}
    stale = [key for key in KNOWN_FRAGMENTS if key not in present]
    assert not stale, f"remove these KNOWN_FRAGMENTS entries, the blocks are gone: {stale}"


def test_markers_are_understood() -> None:
    for block in all_blocks():
        if block.marker is None:
            continue
        words = block.marker.split()
        if words[0] == "skip":
            continue
        if words[0] == "sls":
            assert len(words) == 3 and words[2] in SLS_CHECKS, f"docs/{block.id}: bad marker {block.marker!r}"
        elif words[0] == "es":
            assert len(words) == 2 and words[1] in ES_CHECKS, f"docs/{block.id}: bad marker {block.marker!r}"
        else:
            raise AssertionError(f"docs/{block.id}: unknown docs-test marker {block.marker!r}")


def test_every_page_is_in_the_navigation() -> None:
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load(MKDOCS_YML.read_text(encoding="utf-8"))

    def pages(node: t.Any) -> Iterator[str]:
        if isinstance(node, str):
            yield node
        elif isinstance(node, list):
            for item in node:
                yield from pages(item)
        elif isinstance(node, dict):
            for value in node.values():
                yield from pages(value)

    listed = set(pages(config["nav"]))
    missing = sorted(p.name for p in DOCS.glob("*.md") if p.name not in listed)
    assert not missing, f"pages missing from the mkdocs nav: {missing}"


def _check_operations(namespace: dict[str, t.Any]) -> None:
    """The dead-letter replay recipe really re-sends what the dead-letter files hold."""
    from flask import Flask

    from flask_difylogstore import DifyLogStore, LogStoreSettings
    from flask_difylogstore.backends.base import Scope
    from flask_difylogstore.pipeline.writer import DeadLetters
    from flask_difylogstore.records import LogRecord, RecordKind, default_clock

    app = Flask("replay")
    DifyLogStore(app, settings=LogStoreSettings(_env_file=None, backend="memory", spool_dir=Path("replay-spool")))
    try:
        state = DifyLogStore.state(app)
        assert state.backend is not None and state.sink is not None
        data = {
            "id": str(uuid.uuid4()),
            "tenant_id": "t1",
            "app_id": "a1",
            "workflow_id": "w1",
            "workflow_run_id": str(uuid.uuid4()),
            "created_from": "service-api",
            "created_by_role": "account",
            "created_by": "u1",
            "created_at": datetime(2025, 1, 2, 3, 4, 5),
        }
        record = LogRecord(RecordKind.APP_LOG, data, default_clock.version_for(RecordKind.APP_LOG, None))
        letters = DeadLetters(state.settings.spool_dir / state.backend.name / "dead")
        letters.add(record, "rejected for the test", 1)
        letters.close()
        files = namespace["replay_dead_letters"](state)
        assert files and all(Path(f).exists() for f in files)
        assert state.sink.flush(10)
        stored = state.backend.get_latest(RecordKind.APP_LOG, [record.id], Scope(tenant_id="t1"))
        assert stored[record.id].log_version == record.log_version
    finally:
        DifyLogStore.close(app)


PAGE_CHECKS: dict[str, Callable[[dict[str, t.Any]], None]] = {"operations.md": _check_operations}


def test_health_report_fields_are_documented(tmp_path: Path) -> None:
    """The health-report table of the operations page names exactly the figures the pipeline reports."""
    from flask import Flask

    from flask_difylogstore import DifyLogStore, LogStoreSettings
    from flask_difylogstore.health import build_health_report

    documented: set[str] = set()
    for line in (DOCS / "operations.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("| `pipeline."):
            first_cell = line.split("|")[1]
            documented.update(name.removeprefix("pipeline.") for name in re.findall(r"`([^`]+)`", first_cell))
    app = Flask("health_fields")
    DifyLogStore(app, settings=LogStoreSettings(_env_file=None, backend="memory", spool_dir=tmp_path / "spool"))
    try:
        reported = set(build_health_report(DifyLogStore.state(app)).pipeline)
    finally:
        DifyLogStore.close(app)
    assert documented == reported, (
        f"undocumented: {sorted(reported - documented)}, no longer reported: {sorted(documented - reported)}"
    )


# -- sample data --------------------------------------------------------------------------------


@dataclass
class Sample:
    """What the repositories say about the sample runs, to compare the queries with."""

    live_app: str
    deleted_app: str
    #: (app_id, day) -> (total tokens, runs) of the live app's runs
    tokens: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    #: status -> runs of the live app
    run_status: Counter[str] = field(default_factory=Counter)
    #: (day, class_name) -> succeeded question-classifier executions
    intents: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: node_id -> (step, runs reaching it, runs failing there)
    funnel: dict[str, tuple[int, int, int]] = field(default_factory=dict)


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def _write_sample(app: t.Any) -> Sample:
    """Runs of two apps through the repositories, then the second app's runs deleted."""
    from sqlalchemy.orm import sessionmaker

    from flask_difylogstore.demo_workload import DemoUser, run_workflow
    from flask_difylogstore.dify.enums import WorkflowNodeExecutionTriggeredFrom, WorkflowRunTriggeredFrom
    from flask_difylogstore.extension import get_state
    from flask_difylogstore.repositories import (
        LogStoreAPIWorkflowNodeExecutionRepository,
        LogStoreAPIWorkflowRunRepository,
        LogStoreWorkflowExecutionRepository,
        LogStoreWorkflowNodeExecutionRepository,
    )

    rng = random.Random(20240501)
    user = DemoUser(str(uuid.UUID(int=rng.getrandbits(128))), str(uuid.UUID(int=rng.getrandbits(128))))
    live, deleted = str(uuid.UUID(int=rng.getrandbits(128))), str(uuid.UUID(int=rng.getrandbits(128)))
    tenant = user.current_tenant_id
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    runs: dict[str, list[str]] = {live: [], deleted: []}
    with app.app_context():
        factory = sessionmaker(bind=app.extensions["sqlalchemy"].engine)
        for app_id, count in ((live, 15), (deleted, 4)):
            for i in range(count):
                run_repo = LogStoreWorkflowExecutionRepository(
                    session_factory=factory, user=user, app_id=app_id, triggered_from=WorkflowRunTriggeredFrom.APP_RUN
                )
                node_repo = LogStoreWorkflowNodeExecutionRepository(
                    session_factory=factory,
                    user=user,
                    app_id=app_id,
                    triggered_from=WorkflowNodeExecutionTriggeredFrom.WORKFLOW_RUN,
                )
                outcome = run_workflow(
                    rng,
                    run_repo,
                    node_repo,
                    workflow_id=f"wf-{app_id[:8]}",
                    started_at=now - timedelta(days=i % 3, minutes=7 * i + 1),
                    fail=i % 4 == 1,
                    retry=i % 5 == 0,
                    shuffle=i % 3 == 0,
                    payload_bytes=300,
                )
                runs[app_id].append(outcome.run_id)
        assert get_state().sink.flush(30)
        runs_repo = LogStoreAPIWorkflowRunRepository()
        nodes_repo = LogStoreAPIWorkflowNodeExecutionRepository()
        runs_repo.delete_runs_by_app(tenant, deleted)
        nodes_repo.delete_executions_by_app(tenant, deleted)
        assert get_state().sink.flush(30)

        sample = Sample(live, deleted)
        tokens: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        reached: dict[str, set[str]] = defaultdict(set)
        failed: dict[str, set[str]] = defaultdict(set)
        steps: dict[str, int] = {}
        for run_id in runs[live]:
            run = runs_repo.get_workflow_run_by_id(tenant, live, run_id)
            sample.run_status[run.status] += 1
            entry = tokens[(live, _day(run.created_at))]
            entry[0] += int(run.total_tokens or 0)
            entry[1] += 1
            for node in nodes_repo.get_executions_by_workflow_run(tenant, live, run_id):
                reached[node.node_id].add(run_id)
                steps[node.node_id] = min(steps.get(node.node_id, node.index), node.index)
                if node.status in ("failed", "exception"):
                    failed[node.node_id].add(run_id)
                if node.node_type == "question-classifier" and node.status == "succeeded":
                    sample.intents[(_day(node.created_at), json.loads(node.outputs)["class_name"])] += 1
        sample.tokens = {key: (value[0], value[1]) for key, value in tokens.items()}
        sample.funnel = {n: (steps[n], len(reached[n]), len(failed[n])) for n in reached}
    assert sample.run_status["failed"] and sample.intents and sample.tokens
    return sample


def _settings(tmp: Path, **values: t.Any) -> t.Any:
    from flask_difylogstore import LogStoreSettings

    return LogStoreSettings(_env_file=None, spool_dir=tmp / "spool", startup_strict=True, **values)


@dataclass
class Environment:
    run: Callable[[Block, str], t.Any]
    sample: Sample


@pytest.fixture(scope="module")
def sls_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Environment]:
    from aliyun.log import GetLogsRequest

    from flask_difylogstore import DifyLogStore
    from flask_difylogstore.testing import LocalSLSServer
    from flask_difylogstore.testing.host_app import create_app

    with LocalSLSServer() as server:
        project = "dify-logs"
        settings = _settings(
            tmp_path_factory.mktemp("sls-docs"),
            backend="aliyun_sls",
            sls={
                "access_key_id": server.access_key_id,
                "access_key_secret": server.access_key_secret,
                "endpoint": server.endpoint,
                "region": "cn-hangzhou",
                "project_name": project,
            },
        )
        app = create_app("sqlite://", settings=settings)
        try:
            sample = _write_sample(app)
            client = server.client()

            def run(block: Block, query: str) -> list[dict[str, str]]:
                logstore = t.cast(str, block.marker).split()[1]
                request = GetLogsRequest(
                    project, logstore, 0, int(time.time()) + 86_400, "", query, line=100, offset=0, reverse=False
                )
                return [dict(log.get_contents()) for log in client.get_logs(request).get_logs()]

            yield Environment(run, sample)
        finally:
            DifyLogStore.close(app)


@pytest.fixture(scope="module")
def es_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Environment]:
    from flask_difylogstore import DifyLogStore
    from flask_difylogstore.testing import LocalElasticsearchServer
    from flask_difylogstore.testing.host_app import create_app

    with LocalElasticsearchServer() as server:
        settings = _settings(
            tmp_path_factory.mktemp("es-docs"),
            backend="elasticsearch",
            elasticsearch={"hosts": [server.url], "number_of_replicas": 0},
        )
        app = create_app("sqlite://", settings=settings)
        try:
            sample = _write_sample(app)
            client = server.client()
            client.indices.refresh(index="dify-*")

            def run(block: Block, request: str) -> dict[str, t.Any]:
                first, _, body = request.strip().partition("\n")
                method, path = first.split(maxsplit=1)
                response = client.perform_request(
                    method,
                    path if path.startswith("/") else f"/{path}",
                    body=json.loads(body) if body.strip() else None,
                    headers={"accept": "application/json", "content-type": "application/json"},
                )
                return t.cast(dict[str, t.Any], response.body)

            yield Environment(run, sample)
        finally:
            DifyLogStore.close(app)


# -- SLS console queries ------------------------------------------------------------------------


def sls_status(rows: list[dict[str, str]], sample: Sample, rerun: Callable[[str], t.Any], query: str) -> None:
    assert {r["status"]: int(r["runs"]) for r in rows} == dict(sample.run_status)


def sls_intents(rows: list[dict[str, str]], sample: Sample, rerun: Callable[[str], t.Any], query: str) -> None:
    assert {(r["day"], r["intent"]): int(r["executions"]) for r in rows} == dict(sample.intents)


def sls_funnel(rows: list[dict[str, str]], sample: Sample, rerun: Callable[[str], t.Any], query: str) -> None:
    found = {r["node_id"]: (int(r["step"]), int(r["runs_reached"]), int(r["runs_failed_here"])) for r in rows}
    assert found == sample.funnel
    assert [r["node_id"] for r in rows] == sorted(sample.funnel, key=lambda n: sample.funnel[n][0])


def sls_tokens(rows: list[dict[str, str]], sample: Sample, rerun: Callable[[str], t.Any], query: str) -> None:
    assert rows == []  # the sample stays far below the alert threshold
    lowered = query.replace("> 1000000", "> 0")
    assert lowered != query, "the token alert query no longer has the threshold this check lowers"
    found = {(r["app_id"], r["day"]): (int(r["tokens"]), int(r["runs"])) for r in rerun(lowered)}
    assert found == sample.tokens


SLS_CHECKS: dict[str, Callable[..., None]] = {
    "run-status": sls_status,
    "intent-trend": sls_intents,
    "node-funnel": sls_funnel,
    "token-alert": sls_tokens,
}


@pytest.mark.parametrize("block", marked("sls"), ids=lambda b: b.id)
def test_sls_console_query(block: Block, sls_environment: Environment) -> None:
    query = block.code.replace(APP_ID_PLACEHOLDER, sls_environment.sample.live_app)
    rows = sls_environment.run(block, query)
    check = SLS_CHECKS[t.cast(str, block.marker).split()[2]]
    check(rows, sls_environment.sample, lambda text: sls_environment.run(block, text), query)


# -- Kibana Dev Tools requests ------------------------------------------------------------------


def es_status(body: dict[str, t.Any], sample: Sample, rerun: Callable[[str], t.Any], query: str) -> None:
    buckets = body["aggregations"]["status"]["buckets"]
    assert {b["key"]: b["doc_count"] for b in buckets} == dict(sample.run_status)


def es_intents(body: dict[str, t.Any], sample: Sample, rerun: Callable[[str], t.Any], query: str) -> None:
    found = {
        (day["key_as_string"], name): bucket["doc_count"]
        for day in body["aggregations"]["per_day"]["buckets"]
        for name, bucket in day["intent"]["buckets"].items()
        if bucket["doc_count"]
    }
    assert found == dict(sample.intents)


def es_funnel(body: dict[str, t.Any], sample: Sample, rerun: Callable[[str], t.Any], query: str) -> None:
    buckets = body["aggregations"]["nodes"]["buckets"]
    found = {
        b["key"]: (int(b["step"]["value"]), b["runs_reached"]["value"], b["failed"]["runs"]["value"]) for b in buckets
    }
    assert found == sample.funnel
    assert [b["key"] for b in buckets] == sorted(sample.funnel, key=lambda n: sample.funnel[n][0])


def es_tokens(body: dict[str, t.Any], sample: Sample, rerun: Callable[[str], t.Any], query: str) -> None:
    found = {
        (app["key"], day["key_as_string"]): (int(day["tokens"]["value"]), day["doc_count"])
        for app in body["aggregations"]["apps"]["buckets"]
        for day in app["per_day"]["buckets"]
        if day["doc_count"]
    }
    assert found == sample.tokens


ES_CHECKS: dict[str, Callable[..., None]] = {
    "run-status": es_status,
    "intent-trend": es_intents,
    "node-funnel": es_funnel,
    "token-cost": es_tokens,
}


@pytest.mark.parametrize("block", marked("es"), ids=lambda b: b.id)
def test_kibana_request(block: Block, es_environment: Environment) -> None:
    request = block.code.replace(APP_ID_PLACEHOLDER, es_environment.sample.live_app)
    body = es_environment.run(block, request)
    check = ES_CHECKS[t.cast(str, block.marker).split()[1]]
    check(body, es_environment.sample, lambda text: es_environment.run(block, text), request)


def test_analytics_queries_are_all_executed() -> None:
    """Every SLS query and Kibana request on the analytics page carries a marker."""
    for block in parse_blocks(DOCS / "analytics.md"):
        if block.lang == "sql" or block.code.lstrip().startswith(("GET ", "POST ")):
            assert block.marker, f"docs/{block.id} is a query without a docs-test marker"
