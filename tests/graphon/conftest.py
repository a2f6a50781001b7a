"""Tests that run real workflows with graphon's engine; graphon needs Python 3.12, so elsewhere they are skipped."""

import pytest

pytest.importorskip("graphon", reason="graphon (Dify's workflow engine, Python >= 3.12) is not installed")

# The contract suite's backends (memory, the local SLS and Elasticsearch servers), one per module run.
from tests.contract.conftest import backend_name, backend_values  # noqa: F401
