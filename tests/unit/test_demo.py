"""The main job runs end to end on the embedded defaults and fails loudly when a check fails."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from flask_difylogstore.__main__ import main


@pytest.mark.parametrize("backend", ["aliyun_sls", "elasticsearch"])
def test_demo_runs_clean_on_the_local_servers(backend: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["demo", "--backend", backend, "--runs", "10", "--threads", "2", "--workdir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "11/11 checks passed" in result.output
    assert "FAILED" not in result.output
    assert "log-store repository" in result.output and "daily runs" in result.output


def test_demo_announces_real_endpoints_from_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flask_difylogstore.testing.sls import LocalSLSServer

    with LocalSLSServer() as server:
        (tmp_path / ".env").write_text(
            "LOGSTORE_BACKEND=aliyun_sls\n"
            f"ALIYUN_SLS_ACCESS_KEY_ID={server.access_key_id}\n"
            f"ALIYUN_SLS_ACCESS_KEY_SECRET={server.access_key_secret}\n"
            f"ALIYUN_SLS_ENDPOINT={server.endpoint}\nALIYUN_SLS_REGION=cn-test\nALIYUN_SLS_PROJECT_NAME=from-env\n"
        )
        monkeypatch.chdir(tmp_path)
        result = CliRunner().invoke(main, ["demo", "--runs", "8", "--threads", "1", "--workdir", str(tmp_path / "w")])
    assert result.exit_code == 0, result.output
    assert "REAL aliyun_sls endpoint configured in .env" in result.output


def test_demo_exit_status_is_non_zero_when_a_check_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import flask_difylogstore.demo as demo

    def broken(*args: object, **kwargs: object) -> dict[str, object]:
        checks = args[-1]
        checks.check("a deliberately failing check", False)  # type: ignore[attr-defined]
        return {"migrated": 0, "seconds": 0.0, "verify_ok": False}

    monkeypatch.setattr(demo, "_migrate_and_verify", broken)
    result = CliRunner().invoke(
        main, ["demo", "--backend", "memory", "--runs", "8", "--threads", "1", "--workdir", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert "FAILED" in result.output
