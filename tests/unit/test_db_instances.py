"""Instance queries: compare-and-swap updates, paging, filters; on every backend."""
from __future__ import annotations

import datetime

import pytest

from stratus import exception
from stratus.compute import vm_states
from stratus.db import instances as db_instances
from stratus.utils import new_uuid, utcnow


def make(db, n=1, project="p1", **values):
    base = utcnow()
    rows = []
    for i in range(n):
        row = {"uuid": new_uuid(), "project_id": project, "user_id": "u1",
               "display_name": f"vm-{i}", "flavor": {"flavorid": "1"},
               "vm_state": vm_states.BUILDING, "task_state": vm_states.SCHEDULING,
               "created_at": base + datetime.timedelta(milliseconds=i),
               "updated_at": base + datetime.timedelta(milliseconds=i),
               "metadata": {"k": str(i)}}
        row.update(values)
        rows.append(row)
    return db_instances.instance_create_many(db, rows, action="create", request_id="req-1")


def test_create_get_with_metadata_and_action(database):
    [inst] = make(database)
    got = db_instances.instance_get(database, inst["uuid"])
    assert got["metadata"] == {"k": "0"} and got["fault"] is None
    assert got["flavor"] == {"flavorid": "1"}
    [action] = db_instances.actions_get(database, inst["uuid"])
    assert action["action"] == "create" and action["request_id"] == "req-1"
    with pytest.raises(exception.InstanceNotFound):
        db_instances.instance_get(database, inst["uuid"], project_id="other")


def test_update_is_a_compare_and_swap(database):
    [inst] = make(database)
    uuid = inst["uuid"]
    done = db_instances.instance_update(database, uuid, {"task_state": vm_states.SPAWNING},
                                        expected_task_state=[vm_states.SCHEDULING])
    assert done["task_state"] == vm_states.SPAWNING
    with pytest.raises(exception.UnexpectedTaskStateError):
        db_instances.instance_update(database, uuid, {"task_state": None},
                                     expected_task_state=[vm_states.SCHEDULING])
    done = db_instances.instance_update(
        database, uuid, {"vm_state": vm_states.ACTIVE, "task_state": None,
                         "launched_at": "2026-01-02T03:04:05.000006"},
        expected_task_state=vm_states.SPAWNING)
    assert done["launched_at"] == datetime.datetime(2026, 1, 2, 3, 4, 5, 6)
    # None means "idle" in expected_task_state.
    db_instances.instance_update(database, uuid, {"task_state": vm_states.POWERING_OFF},
                                 expected_task_state=[None])
    db_instances.instance_destroy(database, uuid)
    with pytest.raises(exception.InstanceNotFound):
        db_instances.instance_update(database, uuid, {"task_state": None})


def test_destroy_soft_deletes_and_frees_allocations(database):
    from stratus.db import services as db_services
    from stratus.scheduler import claims

    node = db_services.compute_node_update(database, "h", "h", {"vcpus": 4, "memory_mb": 4096,
                                                                "local_gb": 10})
    [inst] = make(database)
    claims.claim(database, node["id"], node["generation"], inst["uuid"],
                 {"vcpus": 1, "memory_mb": 512, "disk_gb": 1})
    assert db_services.allocation_usage(database)[node["id"]]["instances"] == 1
    gone = db_instances.instance_destroy(database, inst["uuid"])
    assert gone["deleted"] and gone["vm_state"] == vm_states.DELETED
    assert db_services.allocation_usage(database) == {}
    assert db_instances.instance_get_all(database, {"project_id": "p1"}) == []
    deleted = db_instances.instance_get(database, inst["uuid"], read_deleted=True)
    assert deleted["deleted_at"] is not None


def test_paging_with_marker_newest_first(database):
    made = make(database, 7)
    expected = [i["uuid"] for i in reversed(made)]
    seen, marker = [], None
    while True:
        page = db_instances.instance_get_all(database, {"project_id": "p1"}, limit=3,
                                             marker=marker)
        seen += [i["uuid"] for i in page]
        if len(page) < 3:
            break
        marker = page[-1]["uuid"]
    assert seen == expected
    with pytest.raises(exception.Invalid):
        db_instances.instance_get_all(database, {}, marker=new_uuid())


def test_filters_status_name_changes_since(database):
    a, b, c = make(database, 3)
    db_instances.instance_update(database, a["uuid"], {"vm_state": vm_states.ACTIVE,
                                                       "task_state": None})
    db_instances.instance_update(database, b["uuid"], {"vm_state": vm_states.ACTIVE,
                                                       "task_state": vm_states.REBOOTING})
    active = db_instances.instance_get_all(
        database, {"states": vm_states.states_from_status("ACTIVE")})
    assert {i["uuid"] for i in active} == {a["uuid"]}
    reboot = db_instances.instance_get_all(
        database, {"states": vm_states.states_from_status("REBOOT")})
    assert {i["uuid"] for i in reboot} == {b["uuid"]}
    named = db_instances.instance_get_all(database, {"name": "^vm-2$"})
    assert [i["uuid"] for i in named] == [c["uuid"]]
    mark = utcnow()
    db_instances.instance_destroy(database, c["uuid"])
    changed = db_instances.instance_get_all(database, {"changes_since": mark})
    assert [i["uuid"] for i in changed] == [c["uuid"]]   # deleted ones included


def test_metadata_update_and_replace(database):
    [inst] = make(database)
    assert db_instances.metadata_update(database, inst["uuid"], {"a": "1"}, replace=False) == \
        {"k": "0", "a": "1"}
    assert db_instances.metadata_update(database, inst["uuid"], {"b": "2"}, replace=True) == \
        {"b": "2"}


def test_fault_and_action_events(database):
    [inst] = make(database)
    uuid = inst["uuid"]
    db_instances.action_event_start(database, uuid, "req-1", "compute_build", "h1")
    db_instances.action_event_finish(database, uuid, "req-1", "compute_build", "Error", "tb")
    db_instances.fault_create(database, uuid, 500, "boom" * 100, "details", "h1")
    db_instances.instance_update(database, uuid, {"vm_state": vm_states.ERROR,
                                                  "task_state": None})
    got = db_instances.instance_get(database, uuid)
    assert got["fault"]["code"] == 500 and len(got["fault"]["message"]) == 255
    [listed] = db_instances.instance_get_all(database, {"uuids": [uuid]})
    assert listed["fault"]["details"] == "details"
    action = db_instances.action_get(database, uuid, "req-1")
    assert action["message"] == "Error"
    [event] = action["events"]
    assert (event["event"], event["result"], event["host"]) == ("compute_build", "Error", "h1")


def test_stuck_builds_found(database):
    [inst] = make(database, updated_at=utcnow() - datetime.timedelta(hours=1))
    make(database)
    stuck = db_instances.instances_stuck_building(database,
                                                  utcnow() - datetime.timedelta(minutes=5))
    assert stuck == [inst["uuid"]]


def test_a_retried_update_that_already_applied_returns_the_row(database):
    [inst] = make(database)
    uuid = inst["uuid"]
    updates = {"task_state": vm_states.SPAWNING}
    db_instances.instance_update(database, uuid, updates,
                                 expected_task_state=[vm_states.SCHEDULING])
    # The reply was lost; the caller asks again.
    again = db_instances.instance_update(database, uuid, updates,
                                         expected_task_state=[vm_states.SCHEDULING],
                                         retried=True)
    assert again["task_state"] == vm_states.SPAWNING
    # A genuine conflict is still one.
    with pytest.raises(exception.UnexpectedTaskStateError):
        db_instances.instance_update(database, uuid, {"task_state": vm_states.DELETING},
                                     expected_task_state=[vm_states.SCHEDULING],
                                     retried=True)


def test_tags_and_tag_filters(database):
    from stratus.db import tags as db_tags

    a, b, c = make(database, 3)
    assert db_tags.tag_add(database, a["uuid"], "red") is True
    assert db_tags.tag_add(database, a["uuid"], "red") is False
    assert db_tags.tags_set(database, b["uuid"], ["blue", "red", "blue"]) == ["blue", "red"]
    assert db_tags.tags_set(database, b["uuid"], ["red", "blue"]) == ["blue", "red"]
    assert db_tags.tags_get(database, b["uuid"]) == ["blue", "red"]
    assert db_tags.tags_get_by_instances(database, [a["uuid"], b["uuid"], c["uuid"]]) == {
        a["uuid"]: ["red"], b["uuid"]: ["blue", "red"]}
    assert db_tags.tag_exists(database, a["uuid"], "red")
    assert not db_tags.tag_exists(database, a["uuid"], "blue")

    def found(**filters):
        return {i["uuid"] for i in db_instances.instance_get_all(database, filters)}

    assert found(**{"tags": ["red"]}) == {a["uuid"], b["uuid"]}
    assert found(**{"tags": ["red", "blue"]}) == {b["uuid"]}
    assert found(**{"tags-any": ["blue", "green"]}) == {b["uuid"]}
    assert found(**{"not-tags": ["red", "blue"]}) == {a["uuid"], c["uuid"]}
    assert found(**{"not-tags-any": ["red"]}) == {c["uuid"]}
    with pytest.raises(db_tags.InstanceTagNotFound):
        db_tags.tag_delete(database, a["uuid"], "blue")
    db_tags.tag_delete(database, a["uuid"], "red")
    db_tags.tags_delete_all(database, b["uuid"])
    assert db_tags.tags_get_by_instances(database, [a["uuid"], b["uuid"]]) == {}
    db_tags.tags_set(database, c["uuid"], [f"t{i}" for i in range(db_tags.MAX_TAG_COUNT)])
    with pytest.raises(exception.Invalid):
        db_tags.tag_add(database, c["uuid"], "t0")  # at the limit even for a known tag
    db_instances.instance_destroy(database, c["uuid"])
    assert db_tags.tags_get(database, c["uuid"]) == []
    with pytest.raises(exception.InstanceNotFound):
        db_tags.tag_add(database, c["uuid"], "x")
