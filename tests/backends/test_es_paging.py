"""Large reads: every node of a 30,000-node run comes back, past the 10,000-hit result window."""

from __future__ import annotations

import math
import typing as t
from urllib.parse import parse_qs

import pytest

from flask_difylogstore.backends.base import Filter, RecordQuery, Scope
from flask_difylogstore.backends.elasticsearch import ElasticsearchBackend
from flask_difylogstore.records import RecordKind
from tests.backends import es_fixtures
from tests.backends.records import RecordFactory

es_backend = es_fixtures.es_backend
es_prefix = es_fixtures.es_prefix
es_server = es_fixtures.es_server
es_settings = es_fixtures.es_settings
records = es_fixtures.records

NODES = 30_000


class _Requests:
    """The ``(method, path, params)`` of every request the client sends (below its retries)."""

    def __init__(self, client: t.Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, str, dict[str, t.Any]]] = []
        transport = client.transport
        send = transport.perform_request

        def recording(method: str, target: str, *args: t.Any, **kwargs: t.Any) -> t.Any:
            path, _, query = target.partition("?")
            self.calls.append((method, path, parse_qs(query)))
            return send(method, target, *args, **kwargs)

        monkeypatch.setattr(transport, "perform_request", recording)

    def paths(self, suffix: str) -> list[tuple[str, str, dict[str, t.Any]]]:
        return [call for call in self.calls if call[1].endswith(suffix)]


def test_thirty_thousand_nodes_of_one_run(
    es_backend: ElasticsearchBackend, records: RecordFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = "big-run"
    nodes = [records.node(run_id=run_id, index=i, offset_s=i / 1000) for i in range(NODES)]
    noise = [records.node(run_id="other-run", index=i) for i in range(50)]
    requests = _Requests(es_backend.client, monkeypatch)
    for start in range(0, NODES, es_backend.max_batch_records):
        result = es_backend.write(nodes[start : start + es_backend.max_batch_records])
        assert result.written == len(nodes[start : start + es_backend.max_batch_records])
    assert es_backend.write(noise).ok
    # The write path is one _bulk per batch, never a refresh or a per-record request (Elasticsearch's
    # "Tune for indexing speed": use bulk requests, don't refresh per write).
    bulks = requests.paths("/_bulk")
    assert len(bulks) == math.ceil(NODES / es_backend.max_batch_records) + 1
    assert all("refresh" not in params for _, _, params in bulks)
    assert not requests.paths("/_refresh")
    assert not [
        path for _, path, _ in requests.calls if any(f"/{api}" in path for api in ("_doc", "_create", "_update"))
    ]
    es_backend.refresh()

    scope = Scope("t1", "a1")
    by_run = (Filter("workflow_run_id", "eq", run_id),)
    query = RecordQuery(RecordKind.NODE_EXECUTION, scope, filters=by_run, order_by=(("index", "asc"),), limit=None)
    page = es_backend.search(query)
    assert [r.data["index"] for r in page.records] == list(range(NODES))
    assert page.next_after is None
    assert es_backend.count(RecordKind.NODE_EXECUTION, scope, by_run) == NODES

    # Keyset pages beyond the window: start after row 12,344 and take 5,000 more.
    after = es_backend.search(
        RecordQuery(RecordKind.NODE_EXECUTION, scope, filters=by_run, order_by=(("index", "desc"),), limit=3)
    )
    assert [r.data["index"] for r in after.records] == [NODES - 1, NODES - 2, NODES - 3]
    pivot = page.records[12_344]
    tail = es_backend.search(
        RecordQuery(
            RecordKind.NODE_EXECUTION,
            scope,
            filters=by_run,
            order_by=(("index", "asc"),),
            limit=5_000,
            after=(pivot.data["index"], pivot.id),
        )
    )
    assert [r.data["index"] for r in tail.records] == list(range(12_345, 17_345))
    assert tail.next_after == (17_344, tail.records[-1].id)
