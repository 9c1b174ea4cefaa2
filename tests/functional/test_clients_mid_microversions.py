"""Unmodified openstacksdk and python-openstackclient against a cloud that
advertises microversion 2.75, on the features of microversions 2.20-2.40 as
those clients use them at the version they negotiate: the in-process cloud
served over real HTTP on a thread, the clients negotiating their versions as
they do against Nova. OSC runs in this process (``openstackclient.shell``)."""
from __future__ import annotations

from typing import Any

import pytest

from tests.cloud import InProcessCloud
from tests.functional.clients import osc_in_process


@pytest.fixture(scope="module")
def image(served: tuple[InProcessCloud, str]) -> str:
    return served[0].create_image("cirros")


def osc(served: tuple[InProcessCloud, str], capsys: pytest.CaptureFixture[str],
        *args: str) -> Any:
    return osc_in_process(served[1], capsys, *args)


def test_sdk_negotiates_2_75_and_create_needs_networks(conn: Any, image: str) -> None:
    import openstack.exceptions

    assert conn.compute.get_endpoint_data().max_microversion == (2, 75)
    with pytest.raises(openstack.exceptions.BadRequestException) as caught:
        conn.compute.create_server(name="no-nets", image_id=image, flavor_id="1")
    assert "'networks' is a required property" in str(caught.value)
    server = conn.compute.create_server(name="sdk-none", image_id=image, flavor_id="1",
                                        networks="none")
    server = conn.compute.wait_for_server(server)
    assert server.tags == []
    server.add_tag(conn.compute, "red")
    assert conn.compute.get_server(server.id).tags == ["red"]
    assert [s.id for s in conn.compute.servers(tags="red")] == [server.id]
    assert server.id not in [s.id for s in conn.compute.servers(not_tags="red")]
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server)
    # 2.21: the actions of a deleted server.
    assert {a.action for a in conn.compute.server_actions(server.id)} == {"create", "delete"}


def test_sdk_hypervisors_at_2_33(conn: Any) -> None:
    hypervisors = list(conn.compute.hypervisors(details=True))
    assert len(hypervisors) == 2 and all(isinstance(h.cpu_info, dict) for h in hypervisors)
    assert [h.id for h in conn.compute.hypervisors(limit=1)] == [h.id for h in hypervisors]


def test_osc_server_create_sends_auto_and_tags(served: tuple[InProcessCloud, str],
                                               capsys: pytest.CaptureFixture[str],
                                               image: str) -> None:
    created = osc(served, capsys, "server", "create", "--image", image, "--flavor", "1",
                  "--wait", "osc-vm", "-f", "json")
    assert created["status"] == "ACTIVE" and created["tags"] == []
    osc(served, capsys, "server", "set", "--tag", "blue", "osc-vm")
    listed = osc(served, capsys, "server", "list", "--tags", "blue", "-f", "json")
    assert [s["Name"] for s in listed] == ["osc-vm"]
    assert osc(served, capsys, "server", "show", "osc-vm", "-f", "json")["tags"] == ["blue"]
    osc(served, capsys, "server", "unset", "--tag", "blue", "osc-vm")
    assert osc(served, capsys, "server", "list", "--tags", "blue", "-f", "json") == []


def test_osc_reads_at_2_75(served: tuple[InProcessCloud, str],
                           capsys: pytest.CaptureFixture[str]) -> None:
    shown = osc(served, capsys, "hypervisor", "show", "host1", "-f", "json")
    assert isinstance(shown["cpu_info"], dict)
    assert len(osc(served, capsys, "hypervisor", "list", "-f", "json")) == 2
    assert "PRIVATE KEY" in osc(served, capsys, "keypair", "create", "osc-key")
    assert [k["Name"] for k in osc(served, capsys, "keypair", "list", "-f", "json")] == [
        "osc-key"]
    quotas = {q["Resource"]: q["Limit"]
              for q in osc(served, capsys, "quota", "show", "--compute", "-f", "json")}
    assert quotas["cores"] == 20 and quotas["floating_ips"] is None  # gone at 2.36
    usage = osc(served, capsys, "usage", "list", "-f", "json")
    assert usage and usage[0]["Project"]
    osc(served, capsys, "limits", "show", "--absolute", "-f", "json")


def test_osc_resets_a_server_state(served: tuple[InProcessCloud, str],
                                   capsys: pytest.CaptureFixture[str], image: str) -> None:
    """os-resetState, as ``openstack server set --state`` sends it."""
    osc(served, capsys, "server", "create", "--image", image, "--flavor", "1", "--wait",
        "osc-reset", "-f", "json")
    osc(served, capsys, "server", "set", "--state", "error", "--auto-approve", "osc-reset")
    assert osc(served, capsys, "server", "show", "osc-reset", "-f", "json")["status"] == "ERROR"
    osc(served, capsys, "server", "set", "--state", "active", "--auto-approve", "osc-reset")
    assert osc(served, capsys, "server", "show", "osc-reset", "-f", "json")["status"] == "ACTIVE"
    osc(served, capsys, "server", "delete", "--wait", "osc-reset")
