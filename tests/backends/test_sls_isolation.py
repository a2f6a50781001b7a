"""Hostile values in scopes, filters, cursors and keywords: never another tenant's row, never an error."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flask_difylogstore.backends.aliyun_sls import AliyunSLSBackend
from flask_difylogstore.backends.base import Filter, RecordQuery, Scope
from flask_difylogstore.records import RecordKind
from flask_difylogstore.settings import AliyunSLSSettings
from tests.backends.conftest import RunFactory

VICTIM = "victim-tenant"
HOSTILE = [
    '"',
    "'",
    "\\",
    '\\"',
    "\\'",
    "|",
    "*",
    "?",
    " and ",
    " or ",
    " not ",
    "--",
    "/*",
    "*/",
    ";",
    "' OR '1'='1",
    '" or tenant_id:*',
    "') OR 1=1 --",
    "| select * from log",
    "victim-tenant",
    "victim*",
    "VICTIM-TENANT",
    "中文",
    "\n",
    "\t",
    "%",
    "_",
    ":",
    "(",
    ")",
    "[",
    "]",
]
hostile_text = st.one_of(
    st.sampled_from(HOSTILE),
    st.lists(st.sampled_from(HOSTILE), min_size=1, max_size=4).map("".join),
    st.text(max_size=20),
)


@pytest.fixture(scope="module")
def seeded(sls_server) -> Iterator[AliyunSLSBackend]:  # type: ignore[no-untyped-def]
    settings_ = AliyunSLSSettings(
        access_key_id=sls_server.access_key_id,
        access_key_secret=sls_server.access_key_secret,
        endpoint=sls_server.endpoint,
        region="cn-hangzhou",
        project_name="isolation-probe",
    )
    backend = AliyunSLSBackend(settings_)
    backend.provision()
    make = RunFactory()
    records = [make(tenant=VICTIM, app="victim-app", status="succeeded", offset_s=i) for i in range(5)]
    records += [make(tenant=t, app=t, id=f"own-{n}", offset_s=n) for n, t in enumerate(HOSTILE)]
    assert backend.write(records).ok
    yield backend
    backend.close()


def _check(records: list, tenant: str, app: str | None) -> None:  # type: ignore[type-arg]
    for record in records:
        assert record.data["tenant_id"] == tenant
        if app is not None:
            assert record.data["app_id"] == app


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tenant=hostile_text, app=st.one_of(st.none(), hostile_text), value=hostile_text, keyword=hostile_text)
def test_hostile_values_never_cross_tenants(
    seeded: AliyunSLSBackend, tenant: str, app: str | None, value: str, keyword: str
) -> None:
    tenant = tenant or "x"
    scope = Scope(tenant, app or None)
    filters = (Filter("status", "ne", value), Filter("workflow_id", "not_in", [value]))
    page = seeded.search(
        RecordQuery(RecordKind.RUN, scope, filters=filters, limit=50, after=(datetime(2100, 1, 1), value))
    )
    _check(page.records, tenant, app or None)
    _check(seeded.search(RecordQuery(RecordKind.RUN, scope, keyword=keyword)).records, tenant, app or None)
    found = seeded.get_latest(RecordKind.RUN, [value, "own-0", tenant], scope)
    _check(list(found.values()), tenant, app or None)
    assert seeded.count(RecordKind.RUN, scope, [Filter("created_by", "eq", value)]) >= 0


@pytest.mark.parametrize("tenant", [t for t in HOSTILE if t != VICTIM])
def test_each_hostile_tenant_sees_exactly_its_own_row(seeded: AliyunSLSBackend, tenant: str) -> None:
    page = seeded.search(RecordQuery(RecordKind.RUN, Scope(tenant), limit=None))
    assert [r.data["tenant_id"] for r in page.records] == [tenant]
    assert seeded.count(RecordKind.RUN, Scope(tenant)) == 1
