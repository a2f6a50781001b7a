from __future__ import annotations

import threading
import typing as t
import weakref
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from pydantic import ValidationError

from flask_difylogstore import DifyLogStore, DifyLogStoreError, LogStoreConfigError, ProvisioningError, provisioning
from flask_difylogstore import state as state_module
from flask_difylogstore.backends import BackendFactory, register_backend, resolve_backend, unregister_backend
from flask_difylogstore.backends.base import LogBackend
from flask_difylogstore.errors import BackendNotInstalledError
from flask_difylogstore.extension import EXTENSION_KEY, LogStoreState, get_state
from flask_difylogstore.settings import LogStoreSettings
from tests.unit.fakes import FakeBackend

MakeSettings = t.Callable[..., LogStoreSettings]


Register = Callable[[str, BackendFactory], None]


@pytest.fixture
def register() -> Iterator[Register]:
    """``register_backend`` whose registrations are undone when the test ends."""
    names: list[str] = []

    def add(name: str, factory: BackendFactory) -> None:
        register_backend(name, factory)
        names.append(name)

    yield add
    for name in names:
        unregister_backend(name)


@pytest.fixture(autouse=True)
def _fake_backend(register: Register) -> None:
    FakeBackend.instances.clear()
    register("fake", FakeBackend)


def fake_settings(make_settings: MakeSettings, **values: t.Any) -> LogStoreSettings:
    return make_settings(backend="tests.unit.fakes.FakeBackend", startup_timeout=2, **values)


def test_init_app_stores_state_and_provisions(make_settings: MakeSettings) -> None:
    app = Flask(__name__)
    DifyLogStore(app, settings=fake_settings(make_settings))
    state = app.extensions[EXTENSION_KEY]
    assert state.enabled
    assert isinstance(state.backend, LogBackend)
    assert state.gate is not None and state.gate.wait(2)
    assert state.backend.provision_calls == 1
    with app.app_context():
        assert get_state() is state


def test_second_init_app_is_refused(make_settings: MakeSettings) -> None:
    app = Flask(__name__)
    ext = DifyLogStore(app, settings=fake_settings(make_settings))
    with pytest.raises(RuntimeError, match="already initialised"):
        ext.init_app(app)


def test_two_apps_side_by_side_have_their_own_state(make_settings: MakeSettings) -> None:
    ext = DifyLogStore(settings=fake_settings(make_settings))
    first, second = Flask("first"), Flask("second")
    ext.init_app(first)
    ext.init_app(second)
    assert get_state(first) is not get_state(second)
    assert get_state(first).backend is not get_state(second).backend


def test_outside_an_app_context_only_a_single_live_app_is_assumed(
    make_settings: MakeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Flask's application context (https://flask.palletsprojects.com/en/stable/appcontext/): code without
    # one cannot know its app; a guess is safe only while one app is live (Dify's engine threads).
    monkeypatch.setattr(state_module, "_live_states", weakref.WeakSet())
    monkeypatch.setattr(state_module, "_last_state", None)
    ext = DifyLogStore(settings=make_settings())
    first, second = Flask("first"), Flask("second")
    ext.init_app(first)
    found: list[LogStoreState] = []
    worker = threading.Thread(target=lambda: found.append(get_state()))
    worker.start()
    worker.join()
    assert found == [get_state(first)]

    ext.init_app(second)
    with pytest.raises(DifyLogStoreError, match="initialised on 2 apps.*app context"):
        get_state()
    with second.app_context():
        assert get_state() is get_state(second)
    assert get_state(first) is not get_state(second)

    DifyLogStore.close(first)
    assert get_state() is get_state(second)  # a closed app is no longer a candidate
    DifyLogStore.close(second)
    assert get_state() is get_state(second)  # none live: the last one initialised, as before


def test_disabled_backend_has_no_client(make_settings: MakeSettings) -> None:
    app = Flask(__name__)
    DifyLogStore(app, settings=make_settings())
    state = get_state(app)
    assert not state.enabled
    with pytest.raises(DifyLogStoreError, match="LOGSTORE_BACKEND"):
        state.require_backend()


def test_accessor_on_an_app_without_the_extension_says_what_to_do() -> None:
    app = Flask(__name__)
    with app.app_context(), pytest.raises(DifyLogStoreError, match="init_app"):
        get_state()


def test_bad_environment_fails_init_app_with_one_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGSTORE_BACKEND", "elasticsearch")
    monkeypatch.setenv("LOGSTORE_ES_NUMBER_OF_REPLICAS", "many")
    with pytest.raises(LogStoreConfigError) as info:
        DifyLogStore(Flask(__name__))
    assert {p.env_name for p in info.value.problems} == {"LOGSTORE_ES_NUMBER_OF_REPLICAS", "ELASTICSEARCH_HOSTS"}


def test_strict_startup_raises_when_provisioning_fails(make_settings: MakeSettings, register: Register) -> None:
    class Broken(FakeBackend):
        @classmethod
        def from_settings(cls, settings: LogStoreSettings) -> FakeBackend:
            return cls(settings, provision_error="project missing")

    register("broken", Broken)
    # strict startup raises at the first failure, so a long budget costs nothing and can't run out first
    settings = make_settings(backend="broken", startup_strict=True, startup_timeout=60)
    with pytest.raises(ProvisioningError, match="project missing"):
        DifyLogStore(Flask(__name__), settings=settings)
    assert Broken.instances[-1].closed


def test_lenient_startup_marks_unhealthy_and_keeps_retrying(
    make_settings: MakeSettings, monkeypatch: pytest.MonkeyPatch, register: Register
) -> None:
    class Flaky(FakeBackend):
        @classmethod
        def from_settings(cls, settings: LogStoreSettings) -> FakeBackend:
            return cls(settings, provision_error="endpoint unreachable")

    register("flaky", Flaky)
    # the lenient wait ends at the first failed attempt: a budget it can't exhaust keeps this test off the clock
    monkeypatch.setattr(provisioning, "LENIENT_STARTUP_WAIT_S", 60.0)
    app = Flask(__name__)
    DifyLogStore(app, settings=make_settings(backend="flaky", startup_timeout=60))
    state = get_state(app)
    assert state.gate is not None and state.gate.state == "failed"
    backend = t.cast(FakeBackend, state.backend)
    backend.provision_error = None
    assert state.gate.wait(5)
    assert state.gate.state == "done"
    state.close()


def test_close_releases_the_backend_once(make_settings: MakeSettings) -> None:
    app = Flask(__name__)
    DifyLogStore(app, settings=fake_settings(make_settings))
    backend = t.cast(FakeBackend, get_state(app).backend)
    DifyLogStore.close(app)
    DifyLogStore.close(app)
    assert backend.closed


def test_registry_names_the_extra_when_an_sdk_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    import flask_difylogstore.backends as backends

    monkeypatch.setattr(backends, "_sdk_missing", lambda module: True)
    with pytest.raises(BackendNotInstalledError, match=r"flask-difylogstore\[es\]"):
        resolve_backend("elasticsearch")
    with pytest.raises(BackendNotInstalledError, match=r"flask-difylogstore\[sls\]"):
        resolve_backend("aliyun_sls")


def test_a_registration_can_be_undone(make_settings: MakeSettings) -> None:
    register_backend("passing", FakeBackend)
    assert resolve_backend("passing") is FakeBackend
    assert make_settings(backend="passing").backend == "passing"
    unregister_backend("passing")
    with pytest.raises(LogStoreConfigError, match="LOGSTORE_BACKEND"):
        resolve_backend("passing")
    with pytest.raises(ValidationError, match="unknown backend 'passing'"):
        make_settings(backend="passing")
    unregister_backend("passing")  # twice: nothing to undo


def test_registry_rejects_unknown_dotted_paths() -> None:
    with pytest.raises(LogStoreConfigError, match="LOGSTORE_BACKEND"):
        resolve_backend("nowhere.module.Backend")
