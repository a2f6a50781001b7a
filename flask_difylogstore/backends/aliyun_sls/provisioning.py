"""Creating the project's logstores and indexes, idempotently and safely under concurrent starts.

Every API and worker process provisions at boot, so two processes routinely race: an "already
exists" answer is success, after which the current state is read again and merged. Index updates
only ever add keys (see :mod:`.schema`), so concurrent updates converge on the same config.
"""

from __future__ import annotations

import logging
import typing as t

from aliyun.log import IndexConfig
from aliyun.log.logexception import LogException

from flask_difylogstore.backends.aliyun_sls.client import TransportError
from flask_difylogstore.backends.aliyun_sls.schema import desired_index, diff_index
from flask_difylogstore.backends.base import ProvisionChange, ProvisionReport
from flask_difylogstore.errors import ProvisioningError
from flask_difylogstore.records import RecordKind
from flask_difylogstore.schemas import RecordSchema

logger = logging.getLogger(__name__)

_ALREADY = ("ProjectAlreadyExist", "LogStoreAlreadyExist", "IndexAlreadyExist", "IndexConfigAlreadyExist")


class RawIndexConfig(IndexConfig):
    """An ``IndexConfig`` that sends an index JSON as is, so properties the SDK does not model survive."""

    def __init__(self, body: dict[str, t.Any]) -> None:
        super().__init__()
        self.body = body

    def to_json(self) -> dict[str, t.Any]:
        return self.body


def _code(exc: LogException) -> str:
    return str(exc.get_error_code())


class Provisioner:
    """Brings one SLS project to the state the backend needs."""

    def __init__(
        self,
        client: t.Any,
        project: str,
        logstores: t.Mapping[RecordKind, str],
        schemas: t.Mapping[RecordKind, RecordSchema],
        *,
        ttl: int,
        shard_count: int,
        max_text_len: int,
        create_project: bool = True,
    ) -> None:
        self.client = client
        self.project = project
        self.logstores = logstores
        self.schemas = schemas
        self.ttl = ttl
        self.shard_count = shard_count
        self.max_text_len = max_text_len
        self.create_project = create_project
        #: Retention in days of each logstore, as found (an existing logstore keeps its own).
        self.ttls: dict[str, int] = {}

    def run(self, *, dry_run: bool = False) -> ProvisionReport:
        report = ProvisionReport(backend="aliyun_sls", dry_run=dry_run)
        try:
            project_exists = self._project(report, dry_run)
            for kind, name in self.logstores.items():
                if project_exists:
                    exists = self._logstore(report, name, dry_run)
                else:
                    detail = f"create with ttl {self.ttl} days, {self.shard_count} shards"
                    report.changes.append(ProvisionChange(f"logstore:{name}", "create", detail))
                    exists = False
                self._index(report, name, self.schemas[kind], exists, dry_run)
        except LogException as exc:
            raise ProvisioningError(
                f"SLS provisioning of project {self.project!r} failed: {_code(exc)}: {exc.get_error_message()}"
            ) from exc
        except TransportError as exc:
            raise ProvisioningError(f"SLS endpoint unreachable while provisioning: {exc}") from exc
        return report

    def _project(self, report: ProvisionReport, dry_run: bool) -> bool:
        target = f"project:{self.project}"
        try:
            self.client.get_project(self.project)
            report.changes.append(ProvisionChange(target, "keep", "exists"))
            return True
        except LogException as exc:
            if _code(exc) != "ProjectNotExist":
                raise
        if not self.create_project:
            raise ProvisioningError(
                f"SLS project {self.project!r} does not exist and creating projects is not permitted; "
                "create it in the console or set ALIYUN_SLS_PROJECT_NAME to an existing project"
            )
        report.changes.append(ProvisionChange(target, "create", "create project"))
        if dry_run:
            return False
        try:
            self.client.create_project(self.project, "Dify workflow logs (flask-difylogstore)")
        except LogException as exc:
            if _code(exc) not in _ALREADY:
                raise
        return True

    def _logstore(self, report: ProvisionReport, name: str, dry_run: bool) -> bool:
        target = f"logstore:{name}"
        try:
            info = self.client.get_logstore(self.project, name)
        except LogException as exc:
            if _code(exc) != "LogStoreNotExist":
                raise
        else:
            ttl = getattr(info, "ttl", None)
            if ttl is not None:
                self.ttls[name] = int(ttl)
            detail = "exists"
            if ttl is not None and int(ttl) != self.ttl:
                detail = f"exists with ttl {ttl} days (ALIYUN_SLS_LOGSTORE_TTL={self.ttl} is not applied to it)"
            report.changes.append(ProvisionChange(target, "keep", detail))
            return True
        report.changes.append(
            ProvisionChange(target, "create", f"create with ttl {self.ttl} days, {self.shard_count} shards")
        )
        if dry_run:
            return False
        self.ttls[name] = self.ttl
        try:
            self.client.create_logstore(self.project, name, ttl=self.ttl, shard_count=self.shard_count)
        except LogException as exc:
            if _code(exc) not in _ALREADY:
                raise
            logger.debug("logstore %s was created concurrently", name)
        return True

    def _index(self, report: ProvisionReport, name: str, schema: RecordSchema, exists: bool, dry_run: bool) -> None:
        target = f"index:{name}"
        existing = self._read_index(name) if exists else None
        if existing is None:
            desired = desired_index(schema, self.max_text_len)
            keys = ", ".join(desired["keys"])
            report.changes.append(
                ProvisionChange(target, "create", f"create index (max_text_len {self.max_text_len}): {keys}")
            )
            if dry_run:
                return
            try:
                self.client.create_index(self.project, name, RawIndexConfig(desired))
                return
            except LogException as exc:
                if _code(exc) not in _ALREADY:
                    raise
            existing = self._read_index(name) or {}  # created concurrently: merge into it
        diff = diff_index(existing, schema, self.max_text_len)
        if not diff.changed:
            report.changes.append(ProvisionChange(target, "keep", "; ".join(diff.notes) or "up to date"))
            return
        report.changes.append(ProvisionChange(target, "update", "; ".join(diff.describe())))
        if not dry_run:
            self.client.update_index(self.project, name, RawIndexConfig(diff.merged))

    def _read_index(self, name: str) -> dict[str, t.Any] | None:
        try:
            response = self.client.get_index_config(self.project, name)
        except LogException as exc:
            if _code(exc) in ("IndexConfigNotExist", "IndexNotExist"):
                return None
            raise
        body = response.get_body()
        return dict(body) if isinstance(body, dict) else {}
