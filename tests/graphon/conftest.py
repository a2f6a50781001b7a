"""Tests that run real workflows with graphon's engine; graphon needs Python 3.12, so elsewhere they are skipped."""

import pytest

pytest.importorskip("graphon", reason="graphon (Dify's workflow engine, Python >= 3.12) is not installed")
