"""Make the host Dify construct the package's repositories — on every Dify line — or fail loudly.

Dify has chosen its workflow-log repositories in two ways:

* **Class paths** (Dify 1.9–1.13): ``CORE_WORKFLOW_EXECUTION_REPOSITORY``,
  ``CORE_WORKFLOW_NODE_EXECUTION_REPOSITORY``, ``API_WORKFLOW_RUN_REPOSITORY`` and
  ``API_WORKFLOW_NODE_EXECUTION_REPOSITORY`` name the classes; Dify's factories import them by
  dotted path whenever a repository is built. :func:`install` sets the four to the package's classes
  when they hold Dify's SQL defaults (the ``.env`` lines keep working) and refuses any other value.
* **In code** (the newest line): ``WORKFLOW_RUN_STORAGE_BACKEND`` /
  ``WORKFLOW_NODE_EXECUTION_STORAGE_BACKEND`` (``rdbms`` | ``celery`` | ``logstore``) are matched
  by four factory functions in ``extensions.application_services.workflow_writers`` and
  ``.workflow_storage``, each constructing a class it imported at module level. A function looks
  those names up in its module's globals *when it is called*, so :func:`install` rebinds them there:
  whoever imported the factory, and whenever, gets the package's class. Both ``rdbms`` (the default)
  and ``logstore`` are taken over; ``celery`` is refused (it queues SQL writes the package replaces).

Nothing falls back silently: a host whose wiring has a shape not described here, or a Dify setting
that contradicts ``LOGSTORE_BACKEND``, makes :func:`install` raise one :class:`DifyWiringError`
naming the setting to change. With ``WORKFLOW_*_STORAGE_BACKEND=logstore``, Dify's own
``extensions.ext_logstore`` would provision SLS with its own index layout; :func:`install` turns it
into a no-op so the two never fight over the same logstores.
"""

from __future__ import annotations

import logging
import types
import typing as t
from dataclasses import dataclass, field

from flask_difylogstore.dify import compat
from flask_difylogstore.errors import DifyLogStoreError

logger = logging.getLogger(__name__)

PACKAGE_CLASSES = {
    "workflow_execution": "flask_difylogstore.repositories.LogStoreWorkflowExecutionRepository",
    "workflow_node_execution": "flask_difylogstore.repositories.LogStoreWorkflowNodeExecutionRepository",
    "api_workflow_run": "flask_difylogstore.repositories.LogStoreAPIWorkflowRunRepository",
    "api_workflow_node_execution": "flask_difylogstore.repositories.LogStoreAPIWorkflowNodeExecutionRepository",
}

#: Class-path settings of Dify 1.9–1.13, per contract.
CLASS_PATH_SETTINGS = {
    "workflow_execution": "CORE_WORKFLOW_EXECUTION_REPOSITORY",
    "workflow_node_execution": "CORE_WORKFLOW_NODE_EXECUTION_REPOSITORY",
    "api_workflow_run": "API_WORKFLOW_RUN_REPOSITORY",
    "api_workflow_node_execution": "API_WORKFLOW_NODE_EXECUTION_REPOSITORY",
}

#: Where ``ext_logstore.init_app`` leaves the :class:`HostWiring` it detected and installed.
WIRING_KEY = "difylogstore.wiring"

WRITERS_MODULE = "extensions.application_services.workflow_writers"
STORAGE_MODULE = "extensions.application_services.workflow_storage"


@dataclass(frozen=True)
class InCodeFactory:
    """One of the newest line's factory functions and the class names its ``match`` constructs."""

    contract: str
    module: str
    function: str
    setting: str
    rdbms: str
    logstore: str


IN_CODE_FACTORIES = (
    InCodeFactory(
        "workflow_execution",
        WRITERS_MODULE,
        "create_workflow_execution_repository",
        "WORKFLOW_RUN_STORAGE_BACKEND",
        "SQLAlchemyWorkflowExecutionRepository",
        "LogstoreWorkflowExecutionWriter",
    ),
    InCodeFactory(
        "workflow_node_execution",
        WRITERS_MODULE,
        "create_workflow_node_execution_repository",
        "WORKFLOW_NODE_EXECUTION_STORAGE_BACKEND",
        "SQLAlchemyWorkflowNodeExecutionRepository",
        "LogstoreWorkflowNodeExecutionWriter",
    ),
    InCodeFactory(
        "api_workflow_run",
        STORAGE_MODULE,
        "create_api_workflow_run_repository",
        "WORKFLOW_RUN_STORAGE_BACKEND",
        "DifyAPISQLAlchemyWorkflowRunRepository",
        "LogstoreWorkflowRunRepository",
    ),
    InCodeFactory(
        "api_workflow_node_execution",
        STORAGE_MODULE,
        "create_api_workflow_node_execution_repository",
        "WORKFLOW_NODE_EXECUTION_STORAGE_BACKEND",
        "DifyAPISQLAlchemyWorkflowNodeExecutionRepository",
        "LogstoreWorkflowNodeExecutionRepository",
    ),
)


class DifyWiringError(DifyLogStoreError):
    """The host Dify cannot be made to use the package's repositories as configured."""


@dataclass
class HostWiring:
    """What :func:`detect` found and :func:`install` did: the Dify line and the classes Dify will build."""

    line: t.Literal["standalone", "class-paths", "in-code"]
    description: str
    #: contract -> dotted path of the class Dify constructs for it.
    classes: dict[str, str] = field(default_factory=dict)
    #: setting -> value, for the settings that decide the wiring.
    settings: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, t.Any]:
        return {
            "line": self.line,
            "description": self.description,
            "classes": dict(self.classes),
            "settings": dict(self.settings),
            "notes": list(self.notes),
        }


def host_summary(app: t.Any) -> dict[str, t.Any]:
    """The Dify line and the classes Dify builds, for ``flask logstore status``.

    What ``ext_logstore.init_app`` installed on ``app``; without it (the extension was set up some
    other way), what detection finds now.
    """
    wiring = getattr(app, "extensions", {}).get(WIRING_KEY)
    if not isinstance(wiring, HostWiring):
        wiring = detect()
        wiring.notes.append("ext_logstore.init_app did not run on this app: Dify's wiring was not changed")
    return wiring.as_dict()


def _dify_config() -> t.Any:
    configs = compat.import_optional("configs")
    return getattr(configs, "dify_config", None) if configs is not None else None


def detect() -> HostWiring:
    """The host's Dify line, from what is importable (nothing is changed)."""
    config = _dify_config()
    if config is not None and hasattr(config, "WORKFLOW_RUN_STORAGE_BACKEND"):
        settings = {f.setting: str(getattr(config, f.setting, "")) for f in IN_CODE_FACTORIES}
        return HostWiring("in-code", "Dify, storage wired in code (WORKFLOW_*_STORAGE_BACKEND)", settings=settings)
    if config is not None and hasattr(config, CLASS_PATH_SETTINGS["workflow_execution"]):
        settings = {name: str(getattr(config, name, "")) for name in CLASS_PATH_SETTINGS.values()}
        return HostWiring("class-paths", "Dify 1.9–1.13, repositories chosen by class path", settings=settings)
    if compat.DIFY_AVAILABLE:
        return HostWiring("class-paths", "Dify models without a recognised configuration", settings={})
    return HostWiring(
        "standalone",
        "no Dify in this process: the package's repositories are used directly",
        classes=dict(PACKAGE_CLASSES),
    )


def install(app: t.Any = None) -> HostWiring:
    """Make the host Dify construct the package's repositories; raise :class:`DifyWiringError` if it cannot."""
    wiring = detect()
    if wiring.line == "standalone":
        return wiring
    if wiring.line == "in-code":
        _install_in_code(wiring, app)
    elif not wiring.settings:
        raise DifyWiringError(
            "flask-difylogstore: this process has Dify's models but no dify_config with either "
            "WORKFLOW_RUN_STORAGE_BACKEND (newest Dify) or CORE_WORKFLOW_EXECUTION_REPOSITORY (Dify 1.9–1.13); "
            "this Dify's wiring is not supported — unset LOGSTORE_BACKEND to keep Dify's own storage"
        )
    else:
        _install_class_paths(wiring)
    logger.info("flask-difylogstore: %s; Dify builds %s", wiring.description, ", ".join(wiring.classes.values()))
    return wiring


# -- Dify 1.9–1.13: class paths ----------------------------------------------------------------


def _install_class_paths(wiring: HostWiring) -> None:
    config = _dify_config()
    problems: list[str] = []
    for contract, setting in CLASS_PATH_SETTINGS.items():
        ours = PACKAGE_CLASSES[contract]
        current = str(getattr(config, setting, "") or "")
        if current == ours:
            wiring.classes[contract] = ours
            continue
        if current and not _is_dify_sql_default(current):
            problems.append(f"{setting}={current} (set it to {ours}, or unset LOGSTORE_BACKEND)")
            continue
        try:
            setattr(config, setting, ours)
        except Exception as exc:  # a frozen config: the operator sets the line in .env
            problems.append(f"{setting} cannot be changed at runtime ({type(exc).__name__}); set {setting}={ours}")
            continue
        wiring.classes[contract] = ours
        wiring.notes.append(f"{setting} was Dify's SQL default; set to {ours}")
    if problems:
        raise DifyWiringError(
            "flask-difylogstore: LOGSTORE_BACKEND is set but Dify is configured to build other repositories: "
            + "; ".join(problems)
        )


def _is_dify_sql_default(path: str) -> bool:
    """Dify's own SQLAlchemy repositories (the defaults of the class-path settings)."""
    return path.rpartition(".")[2] in {
        "SQLAlchemyWorkflowExecutionRepository",
        "SQLAlchemyWorkflowNodeExecutionRepository",
        "DifyAPISQLAlchemyWorkflowRunRepository",
        "DifyAPISQLAlchemyWorkflowNodeExecutionRepository",
    }


# -- newest line: wired in code --------------------------------------------------------------------


def _factory_function(factory: InCodeFactory) -> tuple[types.ModuleType, types.FunctionType]:
    module = compat.import_optional(factory.module)
    function = getattr(module, factory.function, None) if module is not None else None
    if module is None or not isinstance(function, types.FunctionType):
        raise DifyWiringError(
            f"flask-difylogstore: this Dify has WORKFLOW_RUN_STORAGE_BACKEND but no {factory.module}."
            f"{factory.function}; its storage wiring has a shape this version does not know — upgrade "
            "flask-difylogstore or unset LOGSTORE_BACKEND"
        )
    names = set(function.__code__.co_names)
    missing = {factory.rdbms, factory.logstore} - names
    if missing or function.__globals__ is not module.__dict__:
        raise DifyWiringError(
            f"flask-difylogstore: {factory.module}.{factory.function} no longer constructs "
            f"{' / '.join(sorted(missing)) or 'its classes from module globals'}; this Dify's storage wiring has a "
            "shape this version does not know — upgrade flask-difylogstore or unset LOGSTORE_BACKEND"
        )
    return module, function


def _install_in_code(wiring: HostWiring, app: t.Any) -> None:
    from flask_difylogstore import repositories

    celery = sorted({f.setting for f in IN_CODE_FACTORIES if wiring.settings.get(f.setting) == "celery"})
    if celery:
        raise DifyWiringError(
            "flask-difylogstore: "
            + " and ".join(f"{name}=celery" for name in celery)
            + " queues workflow logs through Celery into PostgreSQL, which LOGSTORE_BACKEND replaces; set "
            + " and ".join(f"{name}=rdbms" for name in celery)
            + " (the default) and the package stores the logs"
        )
    targets = [(factory, *_factory_function(factory)) for factory in IN_CODE_FACTORIES]  # check all first
    for factory, module, _function in targets:
        cls = getattr(repositories, PACKAGE_CLASSES[factory.contract].rpartition(".")[2])
        setattr(module, factory.rdbms, cls)
        setattr(module, factory.logstore, cls)
        wiring.classes[factory.contract] = PACKAGE_CLASSES[factory.contract]
    if "logstore" in wiring.settings.values():
        _silence_difys_logstore_extension(wiring, app)


def _silence_difys_logstore_extension(wiring: HostWiring, app: t.Any) -> None:
    """Keep Dify's own SLS provisioning from running beside the package's (same ``ALIYUN_SLS_*``)."""
    ext = compat.import_optional("extensions.ext_logstore")
    if ext is None or not callable(getattr(ext, "init_app", None)):
        return
    extensions = getattr(app, "extensions", None) or {}
    if "logstore" in extensions:
        raise DifyWiringError(
            "flask-difylogstore: WORKFLOW_*_STORAGE_BACKEND=logstore and Dify's own ext_logstore already "
            "provisioned its logstores in this process; list flask_difylogstore's ext_logstore before Dify's "
            "extensions.ext_logstore in app_factory.py, or set WORKFLOW_RUN_STORAGE_BACKEND=rdbms and "
            "WORKFLOW_NODE_EXECUTION_STORAGE_BACKEND=rdbms (the package takes over either mode)"
        )

    def is_enabled() -> bool:
        return False

    def init_app(_app: t.Any) -> None:
        logger.info("Dify's ext_logstore is skipped: flask-difylogstore stores the workflow logs and provisions")

    setattr(ext, "is_enabled", is_enabled)  # noqa: B010 - replacing another module's functions
    setattr(ext, "init_app", init_app)  # noqa: B010
    wiring.notes.append("Dify's own extensions.ext_logstore is disabled (the package provisions the log store)")
