"""Unmodified openstacksdk against a cloud that advertises microversion 2.75:
server groups with a policy and rules (2.64), instance actions (2.51/2.58/
2.62) and migrations (2.59), changes-before (2.66), a server's groups
(2.71). The in-process cloud is served over real HTTP on a thread; the SDK
negotiates its versions as it does against Nova."""
from __future__ import annotations

from typing import Any

import pytest

from tests.cloud import InProcessCloud


@pytest.fixture(scope="module")
def image(served: tuple[InProcessCloud, str]) -> str:
    return served[0].create_image("cirros")


def test_sdk_negotiates_2_75(conn: Any) -> None:
    assert conn.compute.get_endpoint_data().max_microversion == (2, 75)


def test_sdk_server_groups_with_rules(conn: Any, image: str) -> None:
    import openstack.exceptions

    group = conn.compute.create_server_group(name="sdk-spread", policy="anti-affinity",
                                             rules={"max_server_per_host": 2})
    assert group.policy == "anti-affinity"
    assert group.rules == {"max_server_per_host": 2}
    fetched = conn.compute.get_server_group(group.id)
    assert (fetched.name, fetched.policy, fetched.rules) == (
        "sdk-spread", "anti-affinity", {"max_server_per_host": 2})
    assert fetched.member_ids == []
    assert group.id in [g.id for g in conn.compute.server_groups()]
    # Four members fit two hosts at two each; a fifth does not.
    servers = [conn.compute.create_server(name=f"sdk-m{i}", image_id=image, flavor_id="1",
                                          networks="none",
                                          scheduler_hints={"group": group.id})
               for i in range(4)]
    hosts = sorted(conn.compute.wait_for_server(s, interval=0.2).compute_host for s in servers)
    assert hosts == ["host1", "host1", "host2", "host2"]
    extra = conn.compute.create_server(name="sdk-m4", image_id=image, flavor_id="1",
                                       networks="none", scheduler_hints={"group": group.id})
    extra = conn.compute.wait_for_server(extra, status="ERROR", failures=[], interval=0.2)
    assert extra.fault["message"].startswith("No valid host was found")
    assert len(conn.compute.get_server_group(group.id).member_ids) == 5
    assert conn.compute.get_server(servers[0].id).server_groups == [group.id]  # 2.71
    with pytest.raises(openstack.exceptions.BadRequestException) as caught:
        conn.compute.create_server_group(name="bad", policy="affinity",
                                         rules={"max_server_per_host": 2})
    assert "Only anti-affinity policy supports rules." in str(caught.value)
    plain = conn.compute.create_server_group(name="sdk-plain", policy="soft-affinity")
    assert plain.rules == {}
    for s in servers + [extra]:
        conn.compute.delete_server(s)
    conn.compute.delete_server_group(group)
    conn.compute.delete_server_group(plain)
    assert group.id not in [g.id for g in conn.compute.server_groups()]
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.compute.get_server_group(group.id)


def test_sdk_instance_actions_and_migrations(conn: Any, image: str) -> None:
    server = conn.compute.create_server(name="sdk-moved", image_id=image, flavor_id="1",
                                        networks="none")
    server = conn.compute.wait_for_server(server, interval=0.2)
    conn.compute.migrate_server(server)
    server = conn.compute.wait_for_server(server, status="VERIFY_RESIZE", interval=0.2)
    conn.compute.confirm_server_resize(server)
    server = conn.compute.wait_for_server(server, status="ACTIVE", interval=0.2)

    actions = list(conn.compute.server_actions(server))
    assert [a.action for a in actions] == ["confirmResize", "migrate", "create"]
    # 2.58's updated_at and paging (the SDK keeps no attribute for updated_at).
    raw = conn.compute.get(f"/servers/{server.id}/os-instance-actions?limit=2",
                           microversion="2.66").json()
    assert [a["request_id"] for a in raw["instanceActions"]] == [
        a.request_id for a in actions[:2]]
    assert all(a["updated_at"] for a in raw["instanceActions"])
    assert raw["links"][0]["rel"] == "next"
    create = conn.compute.get_server_action(actions[-1].request_id, server)
    assert create.events
    assert all(e.host_id for e in create.events)  # 2.62
    assert any(e.host for e in create.events)  # admin: the host too
    since = list(conn.compute.server_actions(server, changes_since=actions[0].start_time))
    assert actions[0].request_id in [a.request_id for a in since]
    assert len(since) < len(actions)
    # 2.66: changes-before, on actions, servers and migrations.
    past, future = "2000-01-01T00:00:00Z", "2999-01-01T00:00:00Z"
    assert list(conn.compute.server_actions(server, changes_before=past)) == []
    assert len(list(conn.compute.server_actions(server, changes_before=future))) == 3
    assert list(conn.compute.servers(changes_before=past)) == []
    assert server.id in [s.id for s in conn.compute.servers(changes_before=future)]
    assert list(conn.compute.migrations(instance_uuid=server.id, changes_before=past)) == []

    migrations = list(conn.compute.migrations(instance_uuid=server.id))
    assert len(migrations) == 1
    migration = migrations[0]
    assert migration.uuid and migration.status == "confirmed"  # 2.59
    assert migration.migration_type == "migration"
    conn.compute.delete_server(server)
