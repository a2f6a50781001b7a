"""The exception types the package raises, in one place so callers can catch them precisely."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class DifyLogStoreError(Exception):
    """Base class of every error raised by flask-difylogstore."""


@dataclass(frozen=True)
class ConfigProblem:
    """One bad configuration variable: its environment name, what is wrong and how to fix it."""

    env_name: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.env_name}: {self.problem} -> {self.fix}"


class LogStoreConfigError(DifyLogStoreError, ValueError):
    """The configuration is invalid; the message lists every bad variable at once.

    Secret values are never part of the message.
    """

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        count = len(self.problems)
        noun = "variable" if count == 1 else "variables"
        super().__init__(f"flask-difylogstore: invalid configuration ({count} bad {noun}):\n{lines}")

    @classmethod
    def single(cls, env_name: str, problem: str, fix: str) -> LogStoreConfigError:
        """An error about one variable."""
        return cls([ConfigProblem(env_name, problem, fix)])


class BackendNotInstalledError(DifyLogStoreError, ImportError):
    """A backend's SDK is missing; the message names the extra to install."""


class BackendUnavailableError(DifyLogStoreError):
    """The log store cannot be reached or refused a request."""


class ProvisioningError(DifyLogStoreError):
    """Creating or updating logstores, indexes or templates failed."""


class RecordRejectedError(DifyLogStoreError, ValueError):
    """A record cannot be stored as given (for example it is not serialisable at all)."""
