from __future__ import annotations

from pathlib import Path

from flask_difylogstore._configdoc import render_configuration_reference
from flask_difylogstore.settings import LogStoreSettings, env_names

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_configuration_page_is_generated_from_the_settings() -> None:
    assert DOCS.read_text() == render_configuration_reference(), (
        "docs/configuration.md is stale: run `python -m flask_difylogstore config-reference > docs/configuration.md`"
    )


def test_every_variable_has_one_entry() -> None:
    text = DOCS.read_text()
    for field in LogStoreSettings.model_fields.values():
        for name in env_names(field):
            assert text.count(f"`{name}`") >= 1
    for name in ("ALIYUN_SLS_ACCESS_KEY_ID", "ELASTICSEARCH_HOSTS", "LOGSTORE_ES_API_KEY", "LOGSTORE_SPOOL_DIR"):
        assert f"| `{name}` |" in text
