from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
from pydantic import SecretStr

from flask_difylogstore import LogStoreConfigError, LogStoreSettings

SLS_ENV = {
    "LOGSTORE_BACKEND": "aliyun_sls",
    "ALIYUN_SLS_ACCESS_KEY_ID": "ak",
    "ALIYUN_SLS_ACCESS_KEY_SECRET": "very-secret-value",
    "ALIYUN_SLS_ENDPOINT": "cn-hangzhou.log.aliyuncs.com",
    "ALIYUN_SLS_REGION": "cn-hangzhou",
    "ALIYUN_SLS_PROJECT_NAME": "dify",
}


def test_defaults_match_the_documented_table() -> None:
    s = LogStoreSettings(_env_file=None)
    assert s.backend == "none" and not s.enabled
    assert s.dual_write_enabled is False
    assert s.dual_read_enabled is True
    assert s.auto_provision is True
    assert s.startup_strict is False
    assert s.enable_put_graph_field is True
    assert s.sls.logstore_ttl == 365
    assert s.elasticsearch.index_prefix == "dify"
    assert s.elasticsearch.retention_days == 365
    assert s.elasticsearch.number_of_replicas == 1


def test_reads_upstream_names_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {**SLS_ENV, "ALIYUN_SLS_LOGSTORE_TTL": "30", "LOGSTORE_DUAL_WRITE_ENABLED": "true"}.items():
        monkeypatch.setenv(key, value)
    s = LogStoreSettings.load(env_file=None)
    assert s.effective_backend == "aliyun_sls"
    assert s.sls.access_key_id == "ak"
    assert isinstance(s.sls.access_key_secret, SecretStr)
    assert s.sls.access_key_secret.get_secret_value() == "very-secret-value"
    assert s.sls.logstore_ttl == 30
    assert s.dual_write_enabled is True


def test_reads_dotenv_and_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "ELASTICSEARCH_ENABLED=true\nELASTICSEARCH_HOSTS=http://a:9200,http://b:9200\n"
        "ELASTICSEARCH_INDEX_PREFIX=fromfile\nUNRELATED_DIFY_KEY=ignored\n"
    )
    monkeypatch.setenv("ELASTICSEARCH_INDEX_PREFIX", "fromenv")
    s = LogStoreSettings.load(env_file=env_file)
    assert s.effective_backend == "elasticsearch"
    assert s.elasticsearch.hosts == ["http://a:9200", "http://b:9200"]
    assert s.elasticsearch.index_prefix == "fromenv"


def test_keyword_arguments_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALIYUN_SLS_LOGSTORE_TTL", "30")
    s = LogStoreSettings(_env_file=None, sls={"logstore_ttl": 90})
    assert s.sls.logstore_ttl == 90


def test_hosts_accept_a_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ELASTICSEARCH_HOSTS", '["https://es:9200"]')
    assert LogStoreSettings(_env_file=None).elasticsearch.hosts == ["https://es:9200"]


def test_vector_store_credentials_are_never_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ELASTICSEARCH_USERNAME", "elastic")
    monkeypatch.setenv("ELASTICSEARCH_PASSWORD", "vector-store-password")
    s = LogStoreSettings(_env_file=None)
    assert s.elasticsearch.username == ""
    assert s.elasticsearch.password.get_secret_value() == ""


def test_one_error_lists_every_bad_variable_without_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGSTORE_BACKEND", "aliyun_sls")
    monkeypatch.setenv("ALIYUN_SLS_LOGSTORE_TTL", "forever")
    monkeypatch.setenv("LOGSTORE_STARTUP_TIMEOUT", "-3")
    monkeypatch.setenv("ALIYUN_SLS_ACCESS_KEY_SECRET", "s3cr3t-do-not-print")
    with pytest.raises(LogStoreConfigError) as info:
        LogStoreSettings.load(env_file=None)
    message = str(info.value)
    names = {p.env_name for p in info.value.problems}
    assert {
        "ALIYUN_SLS_LOGSTORE_TTL",
        "LOGSTORE_STARTUP_TIMEOUT",
        "ALIYUN_SLS_ENDPOINT",
        "ALIYUN_SLS_ACCESS_KEY_ID",
        "ALIYUN_SLS_REGION",
        "ALIYUN_SLS_PROJECT_NAME",
    } <= names
    assert "s3cr3t-do-not-print" not in message
    assert "forever" not in message or "ALIYUN_SLS_LOGSTORE_TTL" in message
    assert message.count("\n  - ") == len(info.value.problems)


def test_unknown_backend_and_bad_hosts_are_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGSTORE_BACKEND", "mongo")
    monkeypatch.setenv("ELASTICSEARCH_HOSTS", "es:9200")
    with pytest.raises(LogStoreConfigError) as info:
        LogStoreSettings.load(env_file=None)
    assert {p.env_name for p in info.value.problems} == {"LOGSTORE_BACKEND", "ELASTICSEARCH_HOSTS"}


def test_elasticsearch_auth_combinations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGSTORE_BACKEND", "elasticsearch")
    monkeypatch.setenv("ELASTICSEARCH_HOSTS", "http://es:9200")
    monkeypatch.setenv("LOGSTORE_ES_USERNAME", "logs")
    monkeypatch.setenv("LOGSTORE_ES_API_KEY", "key")
    with pytest.raises(LogStoreConfigError) as info:
        LogStoreSettings.load(env_file=None)
    assert len(info.value.problems) == 2


def test_secret_masking_in_summary() -> None:
    s = LogStoreSettings(_env_file=None, sls={"access_key_secret": "abc"}, elasticsearch={"api_key": ""})
    summary: dict[str, t.Any] = s.summary()
    assert summary["sls"]["access_key_secret"] == "**********"
    assert summary["elasticsearch"]["api_key"] == ""
    assert "abc" not in repr(s)


def test_dotted_backend_path_is_accepted() -> None:
    s = LogStoreSettings(_env_file=None, backend="mypkg.backends.CustomBackend")
    assert s.effective_backend == "mypkg.backends.CustomBackend"


# Secrets from files: pydantic-settings' secrets directory (docs.pydantic.dev, "Settings Management",
# "Secrets"), as Docker and Kubernetes mount them: one file per variable, named like it.


def _secrets(tmp_path: Path, **files: str) -> Path:
    directory = tmp_path / "secrets"
    directory.mkdir()
    for name, value in files.items():
        (directory / name).write_text(value + "\n")
    return directory


def test_secrets_directory_supplies_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = _secrets(tmp_path, ALIYUN_SLS_ACCESS_KEY_SECRET="from-a-file", ALIYUN_SLS_ACCESS_KEY_ID="ak-file")
    for key, value in SLS_ENV.items():
        if key not in ("ALIYUN_SLS_ACCESS_KEY_SECRET", "ALIYUN_SLS_ACCESS_KEY_ID"):
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("LOGSTORE_SECRETS_DIR", str(directory))
    s = LogStoreSettings.load(env_file=None)
    assert s.sls.access_key_secret.get_secret_value() == "from-a-file"  # trailing newline stripped
    assert s.sls.access_key_id == "ak-file"
    assert s.secrets_directory == directory


def test_environment_and_dotenv_win_over_secret_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = _secrets(
        tmp_path, LOGSTORE_ES_PASSWORD="file", LOGSTORE_ES_USERNAME="file-user", ELASTICSEARCH_INDEX_PREFIX="file"
    )
    env_file = tmp_path / ".env"
    env_file.write_text("LOGSTORE_ES_USERNAME=dotenv-user\nELASTICSEARCH_INDEX_PREFIX=dotenv\n")
    monkeypatch.setenv("ELASTICSEARCH_INDEX_PREFIX", "env")
    s = LogStoreSettings(_env_file=env_file, _secrets_dir=directory)  # pydantic-settings' own argument
    assert s.elasticsearch.index_prefix == "env"
    assert s.elasticsearch.username == "dotenv-user"
    assert s.elasticsearch.password.get_secret_value() == "file"


def test_run_secrets_is_the_default_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flask_difylogstore import _settings_sources

    directory = _secrets(tmp_path, LOGSTORE_ES_API_KEY="id:key")
    monkeypatch.setattr(_settings_sources, "DEFAULT_SECRETS_DIR", directory)
    assert LogStoreSettings(_env_file=None).elasticsearch.api_key.get_secret_value() == "id:key"
    monkeypatch.setattr(_settings_sources, "DEFAULT_SECRETS_DIR", tmp_path / "absent")
    assert LogStoreSettings(_env_file=None).elasticsearch.api_key.get_secret_value() == ""


def test_bad_secret_file_is_reported_by_its_variable_without_the_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = _secrets(tmp_path, ALIYUN_SLS_LOGSTORE_TTL="forever-and-ever")
    monkeypatch.setenv("LOGSTORE_SECRETS_DIR", str(directory))
    with pytest.raises(LogStoreConfigError) as info:
        LogStoreSettings.load(env_file=None)
    assert {p.env_name for p in info.value.problems} == {"ALIYUN_SLS_LOGSTORE_TTL"}


def test_every_imported_distribution_is_declared() -> None:
    """pyproject's dependencies and extras name every third-party package the code imports."""
    import ast
    import importlib.metadata
    import re
    import sys
    import tomllib

    root = Path(__file__).parents[2]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"].values()
    requirements = list(project["dependencies"]) + [r for extra in extras for r in extra]
    declared = {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}
    optional_guarded = {"celery", "gevent", "graphon"}  # imported inside try/except where present
    imported: set[str] = set()
    for path in (root / "flask_difylogstore").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    distributions = importlib.metadata.packages_distributions()
    missing = set()
    for module in imported - set(sys.stdlib_module_names) - {"flask_difylogstore"} - optional_guarded:
        names = {d.lower().replace("_", "-") for d in distributions.get(module, [module])}
        if not names & declared:
            missing.add(f"{module} ({', '.join(sorted(names))})")
    assert not missing, f"imported but not declared in pyproject.toml: {sorted(missing)}"
    assert "dotenv" not in imported  # read through pydantic-settings, which declares python-dotenv
