"""The package inside a host laid out like Dify's newest line ("S4"), in a fresh interpreter.

``flask_difylogstore.dify.compat`` decides at import time whether it runs inside Dify, so the
scenarios under ``scenarios/`` run in a subprocess with ``host/`` first on ``PYTHONPATH``: there
``models.workflow`` is importable, the S4 factories exist, and ``ext_logstore.init_app`` must wire them.
The scenarios port Dify's storage-contract suite
(``api/tests/unit_tests/repositories/workflow/storage_contracts/`` at langgenius/dify 7b95e300 / ab1d0626).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_scenarios_pass_inside_an_s4_host() -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE / "host"), *filter(None, [env.get("PYTHONPATH")])])
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/dify_s4/scenarios"]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    if result.returncode != 0:
        print(result.stdout[-20000:])
        print(result.stderr[-5000:], file=sys.stderr)
    assert result.returncode == 0, f"the S4 scenarios failed (exit {result.returncode}); output above"
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "error" not in summary, summary
