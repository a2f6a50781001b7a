"""Index and component templates, lifecycle policies and aliases, returned and validated as Elasticsearch does."""

from __future__ import annotations

import pytest
from elasticsearch import BadRequestError, Elasticsearch, NotFoundError

from tests.testing import es_fixtures

es_server = es_fixtures.es_server
es = es_fixtures.es
index_name = es_fixtures.index_name


def test_index_template_is_returned_normalised(es: Elasticsearch, index_name: str) -> None:
    # indices.put_index_template/10_basic.yml "Put index template" / "Put multiple index templates"
    es.indices.put_index_template(
        name=index_name,
        index_patterns=f"{index_name}-*",
        priority=7,
        template={
            "settings": {"number_of_shards": 1, "number_of_replicas": 0},
            "mappings": {"properties": {"field": {"type": "keyword"}}},
            "aliases": {f"{index_name}-a": {}, f"{index_name}-b": {"routing": "b"}},
        },
    )
    got = es.indices.get_index_template(name=index_name)["index_templates"][0]
    assert got["name"] == index_name
    body = got["index_template"]
    assert body["index_patterns"] == [f"{index_name}-*"] and body["priority"] == 7 and body["composed_of"] == []
    assert body["template"]["settings"] == {"index": {"number_of_shards": "1", "number_of_replicas": "0"}}
    assert body["template"]["mappings"] == {"properties": {"field": {"type": "keyword"}}}
    assert body["template"]["aliases"][f"{index_name}-b"] == {"index_routing": "b", "search_routing": "b"}
    flat = es.indices.get_index_template(name=index_name, flat_settings=True)["index_templates"][0]
    assert flat["index_template"]["template"]["settings"] == {
        "index.number_of_shards": "1",
        "index.number_of_replicas": "0",
    }


def test_index_template_validation(es: Elasticsearch, index_name: str) -> None:
    # 10_basic.yml "Put index template without index_patterns"; ComposableIndexTemplate's parser
    with pytest.raises(BadRequestError) as info:
        es.indices.put_index_template(name=index_name, template={})
    assert info.value.error == "action_request_validation_exception"
    with pytest.raises(BadRequestError) as info:
        es.indices.put_index_template(name=index_name, body={"index_patterns": ["x-*"], "templat": {}})
    # prefixed with Jackson's [line:col] of the field name, as XContentParseException does
    assert info.value.body["error"]["reason"].endswith("] [index_template] unknown field [templat]")
    assert info.value.body["error"]["reason"].startswith("[1:")
    es.indices.put_index_template(name=index_name, index_patterns=[f"{index_name}-*"])
    with pytest.raises(BadRequestError) as info:  # MetadataIndexTemplateService: same priority, overlapping patterns
        es.indices.put_index_template(name=f"{index_name}-2", index_patterns=[f"{index_name}-x*"])
    assert "that have the same priority [0]" in info.value.body["error"]["reason"]


def test_delete_several_templates(es: Elasticsearch, index_name: str) -> None:
    # indices.put_index_template/10_basic.yml "Delete multiple templates"
    for suffix in ("foo", "bar", "baz"):
        es.indices.put_index_template(name=f"{index_name}-{suffix}", index_patterns=[f"{index_name}-{suffix}-*"])
    es.indices.delete_index_template(name=f"{index_name}-foo,{index_name}-bar")
    for gone in ("foo", "bar"):
        with pytest.raises(NotFoundError):
            es.indices.get_index_template(name=f"{index_name}-{gone}")
    assert es.indices.get_index_template(name=f"{index_name}-baz")["index_templates"][0]["name"] == f"{index_name}-baz"


def test_later_component_templates_override_field_types(es: Elasticsearch, index_name: str) -> None:
    # Reference "Index templates": the last component template in composed_of takes precedence
    es.cluster.put_component_template(
        name=f"{index_name}-one",
        template={"mappings": {"properties": {"f": {"type": "keyword"}, "o": {"properties": {"a": {"type": "long"}}}}}},
    )
    es.cluster.put_component_template(
        name=f"{index_name}-two",
        template={
            "settings": {"index": {"number_of_replicas": 0}},
            "mappings": {"properties": {"f": {"type": "long"}, "o": {"properties": {"b": {"type": "keyword"}}}}},
        },
    )
    got = es.cluster.get_component_template(name=f"{index_name}-two")["component_templates"][0]
    assert got["component_template"]["template"]["settings"] == {"index": {"number_of_replicas": "0"}}
    es.indices.put_index_template(
        name=index_name,
        index_patterns=[f"{index_name}-*"],
        composed_of=[f"{index_name}-one", f"{index_name}-two"],
    )
    es.indices.create(index=f"{index_name}-1")
    props = es.indices.get_mapping(index=f"{index_name}-1")[f"{index_name}-1"]["mappings"]["properties"]
    assert props["f"] == {"type": "long"}
    assert props["o"]["properties"] == {"a": {"type": "long"}, "b": {"type": "keyword"}}
    with pytest.raises(BadRequestError) as info:  # a component template in use cannot be removed
        es.cluster.delete_component_template(name=f"{index_name}-one")
    assert "cannot be removed as they are still in use by index templates" in info.value.body["error"]["reason"]


def test_policy_in_use_cannot_be_deleted(es: Elasticsearch, index_name: str) -> None:
    # TransportDeleteLifecycleAction: "Cannot delete policy [p]. It is in use by one or more indices: [...]"
    policy = f"{index_name}-p"
    es.ilm.put_lifecycle(name=policy, policy={"phases": {"delete": {"min_age": "1d", "actions": {"delete": {}}}}})
    es.indices.create(index=index_name, settings={"index.lifecycle.name": policy})
    with pytest.raises(BadRequestError) as info:
        es.ilm.delete_lifecycle(name=policy)
    assert info.value.body["error"]["reason"] == (
        f"Cannot delete policy [{policy}]. It is in use by one or more indices: [{index_name}]"
    )
    assert es.ilm.get_lifecycle(name=policy)[policy]["in_use_by"]["indices"] == [index_name]
    es.indices.delete(index=index_name)
    es.ilm.delete_lifecycle(name=policy)


@pytest.mark.parametrize(
    ("phases", "message"),
    [
        ({"lukewarm": {"actions": {}}}, "Timeseries lifecycle does not support phase [lukewarm]"),
        ({"delete": {"actions": {"rollover": {"max_age": "1d"}}}},
         "invalid action [rollover] defined in phase [delete]"),
        ({"warm": {"min_age": "10d", "actions": {}}, "cold": {"min_age": "5d", "actions": {}}},
         "Your policy is configured to run the cold phase (min_age: 5d) before the warm phase (min_age: 10d)"),
    ],
)  # fmt: skip
def test_policy_phases_are_validated(
    es: Elasticsearch, index_name: str, phases: dict[str, object], message: str
) -> None:
    # TimeseriesLifecycleType#validate
    with pytest.raises(BadRequestError) as info:
        es.ilm.put_lifecycle(name=f"{index_name}-p", policy={"phases": phases})
    assert message in info.value.body["error"]["reason"]


def test_get_alias_all(es: Elasticsearch, index_name: str) -> None:
    # indices.get_alias/10_basic.yml "Get aliases via /_alias/_all"
    es.indices.create(index=index_name, aliases={f"{index_name}-alias": {}})
    found = es.indices.get_alias(name="_all")
    assert found[index_name] == {"aliases": {f"{index_name}-alias": {}}}


def test_index_settings_are_checked(es: Elasticsearch, index_name: str) -> None:
    # IndexScopedSettings#validate: "unknown setting [index.x] please check that any required plugins are installed,
    # or check the breaking changes documentation for removed settings"
    with pytest.raises(BadRequestError) as info:
        es.indices.create(index=index_name, settings={"index": {"numbr_of_shards": 1}})
    assert info.value.body["error"]["reason"].startswith("unknown setting [index.numbr_of_shards] please check")
    with pytest.raises(BadRequestError) as info:  # known to Elasticsearch, changes results, not implemented here
        es.indices.create(index=index_name, settings={"index.sort.field": "ts"})
    assert "[index.sort.field: ts]" in info.value.body["error"]["reason"]
    with pytest.raises(BadRequestError):
        es.indices.put_index_template(
            name=index_name, index_patterns=[f"{index_name}-*"], template={"settings": {"analysis": {"x": 1}}}
        )
    es.indices.create(index=index_name, settings={"index": {"codec": "best_compression", "number_of_replicas": 0}})
    with pytest.raises(BadRequestError) as info:
        es.indices.put_settings(index=index_name, settings={"index": {"max_result_window": "many"}})
    assert info.value.body["error"]["reason"] == "Failed to parse value [many] for setting [index.max_result_window]"
