"""Index management, templates, aliases, ILM, cluster APIs and persistence, through the real client."""

from __future__ import annotations

import time
import typing as t
from pathlib import Path

import elasticsearch
import pytest
from elasticsearch import BadRequestError, Elasticsearch, NotFoundError

from flask_difylogstore.testing.es import LocalElasticsearchServer
from tests.testing import es_fixtures

es_server = es_fixtures.es_server
es = es_fixtures.es
index_name = es_fixtures.index_name


def test_info_reports_the_client_major(es: Elasticsearch) -> None:
    info = es.info()
    assert info["version"]["number"].split(".")[0] == str(es_fixtures.CLIENT_MAJOR)
    assert info["tagline"] == "You Know, for Search"


def test_rest_compatibility_between_majors() -> None:
    newer = f"{es_fixtures.CLIENT_MAJOR + 1}.1.0"
    with LocalElasticsearchServer(version=newer) as server:
        assert server.client().info()["version"]["number"] == newer
    older = f"{es_fixtures.CLIENT_MAJOR - 1}.19.0"
    with LocalElasticsearchServer(version=older) as server:
        client = server.client(max_retries=0)
        with pytest.raises(BadRequestError) as exc:
            client.info()
        assert exc.value.error == "media_type_header_exception"
        raw = client.perform_request("GET", "/", headers={"accept": "*/*"})
        assert raw["version"]["number"] == older


def test_request_too_large() -> None:
    with LocalElasticsearchServer(max_content_length=10_000) as server:
        client = server.client(max_retries=0)
        with pytest.raises(elasticsearch.ApiError) as exc:
            client.bulk(operations=[{"index": {"_index": "big"}}, {"x": "y" * 20_000}])
        assert exc.value.status_code == 413
        assert client.info()["tagline"]


def test_create_get_exists_delete(es: Elasticsearch, index_name: str) -> None:
    assert not es.indices.exists(index=index_name)
    es.indices.create(
        index=index_name,
        settings={"number_of_shards": 1, "index": {"refresh_interval": "5s"}},
        mappings={"properties": {"status": {"type": "keyword"}}},
    )
    assert es.indices.exists(index=index_name)
    got = es.indices.get(index=index_name)[index_name]
    assert got["mappings"]["properties"]["status"] == {"type": "keyword"}
    assert got["settings"]["index"]["refresh_interval"] == "5s"
    assert got["settings"]["index"]["number_of_shards"] == "1"
    with pytest.raises(BadRequestError) as exc:
        es.indices.create(index=index_name)
    assert exc.value.error == "resource_already_exists_exception"
    with pytest.raises(BadRequestError):
        es.indices.delete(index=f"{index_name[:-1]}*")
    es.indices.delete(index=index_name)
    assert not es.indices.exists(index=index_name)
    with pytest.raises(NotFoundError) as missing:
        es.indices.delete(index=index_name)
    assert missing.value.error == "index_not_found_exception"


def test_invalid_index_name(es: Elasticsearch) -> None:
    with pytest.raises(BadRequestError) as exc:
        es.indices.create(index="Upper")
    assert exc.value.error == "invalid_index_name_exception"


def test_put_and_get_mapping(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, mappings={"properties": {"a": {"type": "long"}}})
    es.indices.put_mapping(index=index_name, properties={"b": {"type": "keyword", "ignore_above": 10}})
    props = es.indices.get_mapping(index=index_name)[index_name]["mappings"]["properties"]
    assert props == {"a": {"type": "long"}, "b": {"type": "keyword", "ignore_above": 10}}
    with pytest.raises(BadRequestError) as exc:
        es.indices.put_mapping(index=index_name, properties={"a": {"type": "keyword"}})
    assert exc.value.error == "illegal_argument_exception"
    with pytest.raises(BadRequestError) as bad:
        es.indices.put_mapping(index=index_name, properties={"c": {"type": "nosuchtype"}})
    assert bad.value.error == "mapper_parsing_exception"


def test_settings_update(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name)
    es.indices.put_settings(index=index_name, settings={"index": {"max_result_window": 50}})
    got = es.indices.get_settings(index=index_name)[index_name]["settings"]["index"]
    assert got["max_result_window"] == "50"
    with pytest.raises(BadRequestError):
        es.indices.put_settings(index=index_name, settings={"index": {"number_of_shards": 2}})


def test_aliases_and_write_index(es: Elasticsearch, index_name: str) -> None:
    old, new, alias = f"{index_name}-000001", f"{index_name}-000002", f"{index_name}-write"
    es.indices.create(index=old, aliases={alias: {"is_write_index": True}})
    es.index(index=alias, id="1", document={"n": 1}, refresh=True)
    es.indices.create(index=new)
    es.indices.update_aliases(
        actions=[
            {"add": {"index": old, "alias": alias, "is_write_index": False}},
            {"add": {"index": new, "alias": alias, "is_write_index": True}},
        ]
    )
    es.index(index=alias, id="2", document={"n": 2}, refresh=True)
    assert es.get(index=new, id="2")["found"]
    assert es.count(index=alias)["count"] == 2
    got = es.indices.get_alias(name=alias)
    assert got[new]["aliases"][alias]["is_write_index"] is True
    assert got[old]["aliases"][alias]["is_write_index"] is False
    assert es.indices.exists_alias(name=alias)
    es.indices.delete_alias(index=old, name=alias)
    assert list(es.indices.get_alias(name=alias)) == [new]
    es.indices.put_alias(index=old, name=f"{index_name}-read")
    assert es.search(index=f"{index_name}-read")["hits"]["total"]["value"] == 1
    with pytest.raises(NotFoundError):
        es.indices.get_alias(name="no-such-alias")


def test_alias_without_write_index_rejects_writes(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=f"{index_name}-a", aliases={f"{index_name}-all": {}})
    es.indices.create(index=f"{index_name}-b", aliases={f"{index_name}-all": {}})
    with pytest.raises(BadRequestError) as exc:
        es.index(index=f"{index_name}-all", document={"x": 1})
    assert "no write index" in str(exc.value)


def test_composable_templates_with_priority_and_components(es: Elasticsearch, index_name: str) -> None:
    es.cluster.put_component_template(
        name=f"{index_name}-base",
        template={
            "settings": {"index": {"refresh_interval": "2s"}},
            "mappings": {"properties": {"ts": {"type": "date"}}},
        },
    )
    es.indices.put_index_template(
        name=f"{index_name}-low",
        index_patterns=[f"{index_name}-*"],
        priority=1,
        template={"mappings": {"properties": {"low": {"type": "keyword"}}}},
    )
    es.indices.put_index_template(
        name=f"{index_name}-high",
        index_patterns=[f"{index_name}-logs-*"],
        priority=10,
        composed_of=[f"{index_name}-base"],
        template={
            "mappings": {"dynamic": "strict", "properties": {"status": {"type": "keyword"}}},
            "aliases": {f"{index_name}-logs": {}},
        },
    )
    got = es.indices.get_index_template(name=f"{index_name}-high")["index_templates"][0]
    assert got["index_template"]["priority"] == 10
    assert es.indices.exists_index_template(name=f"{index_name}-high")
    es.index(index=f"{index_name}-logs-1", document={"status": "ok", "ts": "2024-01-01"})
    mapping = es.indices.get_mapping(index=f"{index_name}-logs-1")[f"{index_name}-logs-1"]["mappings"]
    assert mapping["dynamic"] == "strict"
    assert set(mapping["properties"]) == {"ts", "status"}
    settings = es.indices.get_settings(index=f"{index_name}-logs-1")[f"{index_name}-logs-1"]["settings"]
    assert settings["index"]["refresh_interval"] == "2s"
    assert es.indices.exists_alias(name=f"{index_name}-logs")
    es.indices.create(index=f"{index_name}-other")
    other = es.indices.get_mapping(index=f"{index_name}-other")[f"{index_name}-other"]["mappings"]
    assert other["properties"] == {"low": {"type": "keyword"}}
    assert es.cluster.get_component_template(name=f"{index_name}-base")["component_templates"][0]["name"]
    es.indices.delete_index_template(name=f"{index_name}-low")
    with pytest.raises(NotFoundError):
        es.indices.get_index_template(name=f"{index_name}-low")


def test_ilm_policy_storage_and_delete_phase(
    es: Elasticsearch, es_server: LocalElasticsearchServer, index_name: str
) -> None:
    policy = {"phases": {"hot": {"actions": {}}, "delete": {"min_age": "7d", "actions": {"delete": {}}}}}
    es.ilm.put_lifecycle(name=f"{index_name}-p", policy=policy)
    got = es.ilm.get_lifecycle(name=f"{index_name}-p")[f"{index_name}-p"]
    # Stored as ES stores it: default min_age "0ms", the delete action's delete_searchable_snapshot flag
    # (reference: "Get lifecycle policy API" example response).
    assert got["policy"] == {
        "phases": {
            "hot": {"min_age": "0ms", "actions": {}},
            "delete": {"min_age": "7d", "actions": {"delete": {"delete_searchable_snapshot": True}}},
        }
    }
    assert got["version"] == 1
    es.indices.create(index=index_name, settings={"index": {"lifecycle": {"name": f"{index_name}-p"}}})
    es.indices.create(index=f"{index_name}-keep")
    assert es_server.apply_lifecycle(now=time.time() + 6 * 86400) == []
    assert es_server.apply_lifecycle(now=time.time() + 8 * 86400) == [index_name]
    assert not es.indices.exists(index=index_name)
    assert es.indices.exists(index=f"{index_name}-keep")
    es.ilm.delete_lifecycle(name=f"{index_name}-p")
    with pytest.raises(NotFoundError):
        es.ilm.get_lifecycle(name=f"{index_name}-p")


def test_cluster_health_cat_and_stats(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name)
    es.index(index=index_name, id="1", document={"msg": "x" * 100}, refresh=True)
    assert es.cluster.health()["status"] in ("green", "yellow")
    rows = t.cast(list[dict[str, str]], es.cat.indices(index=index_name, format="json").body)
    assert rows[0]["index"] == index_name and rows[0]["docs.count"] == "1"
    stats = es.indices.stats(index=index_name)
    assert stats["indices"][index_name]["primaries"]["docs"]["count"] == 1
    assert stats["indices"][index_name]["primaries"]["store"]["size_in_bytes"] > 100


def test_persistence_and_restart_on_same_port(tmp_path: Path) -> None:
    server = LocalElasticsearchServer(data_dir=tmp_path / "data")
    server.start()
    port = server.port
    es: Elasticsearch = server.client(max_retries=0)
    es.indices.put_index_template(
        name="tpl", index_patterns=["keep-*"], template={"settings": {"number_of_replicas": 0}}
    )
    es.index(index="keep-1", id="a", document={"v": 1}, refresh=True)
    es.index(index="keep-1", id="a", document={"v": 2})
    es.index(index="keep-1", id="gone", document={"v": 1}, version=7, version_type="external")
    es.delete(index="keep-1", id="gone", version=8, version_type="external")
    server.stop()
    with pytest.raises(elasticsearch.ConnectionError):
        es.info()
    server.start()
    assert server.port == port
    assert es.get(index="keep-1", id="a")["_source"] == {"v": 2}
    assert es.get(index="keep-1", id="a")["_version"] == 2
    assert es.count(index="keep-1")["count"] == 1
    assert es.indices.exists_index_template(name="tpl")
    with pytest.raises(elasticsearch.ConflictError):  # the delete's version is still remembered
        es.index(index="keep-1", id="gone", document={"v": 0}, version=6, version_type="external")
    server.stop()
    again = LocalElasticsearchServer(port=port, data_dir=tmp_path / "data")
    with again:
        assert again.client().get(index="keep-1", id="a")["_source"] == {"v": 2}


def test_unknown_route_is_a_bad_request(es: Elasticsearch) -> None:
    with pytest.raises(BadRequestError):
        es.perform_request("GET", "/_nope/_nothing/x/y/z", headers={"accept": "application/json"})


def test_compatibility_headers(es_server: LocalElasticsearchServer) -> None:
    import urllib.request

    request = urllib.request.Request(es_server.url + "/", headers={"Accept": "application/json"})
    with urllib.request.urlopen(request) as reply:
        assert reply.headers["X-Elastic-Product"] == "Elasticsearch"
        body: t.Any = reply.read()
    assert b"You Know, for Search" in body


def test_command_line_server() -> None:
    import socket
    import subprocess
    import sys

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    version = f"{es_fixtures.CLIENT_MAJOR}.15.0"
    proc = subprocess.Popen(
        [sys.executable, "-m", "flask_difylogstore.testing.es", "--port", str(port), "--version", version],
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        assert f"127.0.0.1:{port}" in proc.stdout.readline().decode()
        client = Elasticsearch(f"http://127.0.0.1:{port}")
        assert client.info()["version"]["number"] == version
        client.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_alias_filters_apply_to_searches(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, mappings={"properties": {"tenant": {"type": "keyword"}}})
    es.indices.put_alias(index=index_name, name=f"{index_name}-t1", filter={"term": {"tenant": "t1"}})
    for i, tenant in enumerate(["t1", "t1", "t2"]):
        es.index(index=index_name, id=str(i), document={"tenant": tenant})
    es.indices.refresh(index=index_name)
    assert es.count(index=f"{index_name}-t1")["count"] == 2
    assert es.search(index=f"{index_name}-t1", query={"ids": {"values": ["2"]}})["hits"]["hits"] == []
    assert es.count(index=f"{index_name}-t1,{index_name}")["count"] == 3
    alias = es.indices.get_alias(name=f"{index_name}-t1")[index_name]["aliases"][f"{index_name}-t1"]
    assert alias["filter"] == {"term": {"tenant": "t1"}}


def test_dynamic_templates(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(
        index=index_name,
        mappings={
            "date_detection": False,
            "dynamic_templates": [
                {"ids": {"match": "*_id", "match_mapping_type": "string", "mapping": {"type": "keyword"}}},
                {"labels": {"path_match": "labels.*", "mapping": {"type": "keyword", "ignore_above": 16}}},
                {"floats": {"match_mapping_type": "double", "mapping": {"type": "double"}}},
            ],
        },
    )
    es.index(
        index=index_name,
        id="1",
        document={"app_id": "x", "note": "2024-01-01", "labels": {"env": "prod"}, "ratio": 0.5, "n": 1},
        refresh=True,
    )
    props = es.indices.get_mapping(index=index_name)[index_name]["mappings"]["properties"]
    assert props["app_id"] == {"type": "keyword"}
    assert props["note"]["type"] == "text"
    assert props["labels"]["properties"]["env"] == {"type": "keyword", "ignore_above": 16}
    assert props["ratio"] == {"type": "double"} and props["n"] == {"type": "long"}
    assert es.count(index=index_name, query={"term": {"app_id": "x"}})["count"] == 1
