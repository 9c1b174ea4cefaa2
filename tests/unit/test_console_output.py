"""os-getConsoleOutput (POST /servers/{id}/action) through compute RPC to the driver,
and the all-in-one's choice of hypervisor."""
from __future__ import annotations

import pytest

from stratus import conf as conf_mod
from stratus.cli import choose_hypervisor
from stratus.compute.api import tail_lines


def console(cloud, server_id, body):
    return cloud.compute("POST", f"/servers/{server_id}/action", {"os-getConsoleOutput": body})


def test_console_output_is_the_guests_log(cloud):
    server = cloud.boot("talkative")
    resp = console(cloud, server["id"], {})
    assert resp.status_code == 200
    output = resp.get_json()["output"]
    assert "Linux version" in output and "talkative login:" in output
    assert set(resp.get_json()) == {"output"}


@pytest.mark.parametrize("length, lines", [(1, 1), ("2", 2), (0, 0)])
def test_length_is_the_last_lines(cloud, length, lines):
    server = cloud.boot("tail")
    full = console(cloud, server["id"], {}).get_json()["output"]
    resp = console(cloud, server["id"], {"length": length})
    assert resp.status_code == 200
    output = resp.get_json()["output"]
    expected = "\n".join(full.split("\n")[-lines:]) if lines else ""
    assert output == expected


def test_minus_one_and_null_mean_everything(cloud):
    server = cloud.boot("all")
    full = console(cloud, server["id"], {}).get_json()["output"]
    assert console(cloud, server["id"], {"length": -1}).get_json()["output"] == full
    assert console(cloud, server["id"], {"length": None}).get_json()["output"] == full
    resp = cloud.compute("POST", f"/servers/{server['id']}/action",
                         {"os-getConsoleOutput": None})
    assert resp.status_code == 400


@pytest.mark.parametrize("body", [{"length": -2}, {"length": "abc"}, {"length": 1.5},
                                  {"length": 3, "extra": 1}, {"length": "-5"}])
def test_bad_length_is_400(cloud, body):
    server = cloud.boot("bad")
    resp = console(cloud, server["id"], body)
    assert resp.status_code == 400, resp.get_data(as_text=True)
    assert "badRequest" in resp.get_json()


def test_unknown_server_is_404(cloud):
    resp = console(cloud, "3f0c1b7e-8a59-4d6f-9a53-1f0d2b4c6e8a", {})
    assert resp.status_code == 404


def test_control_characters_are_stripped(cloud):
    server = cloud.boot("ansi")
    driver = cloud.computes["host1"].manager.driver
    driver._guests[server["id"]].console.append("\x1b[2Jcolour\x07 and\ttab")
    output = console(cloud, server["id"], {"length": 2}).get_json()["output"]
    assert "[2Jcolour and\ttab" in output and "\x1b" not in output


def test_tail_lines():
    log = "a\nb\nc\n"
    assert tail_lines(log, None) == log
    assert tail_lines(log, 2) == "c\n"
    assert tail_lines(log, 3) == "b\nc\n"
    assert tail_lines(log, 0) == ""
    assert tail_lines(log, 100) == log


# -- the all-in-one's hypervisor ------------------------------------------------------

def test_hypervisor_named_on_the_command_line(tmp_path):
    conf = conf_mod.load(None, {("DEFAULT", "state_path"): str(tmp_path)})
    assert choose_hypervisor(conf, "fake").startswith("fake (--hypervisor fake)")
    assert conf.compute.driver == "fake"
    said = choose_hypervisor(conf, "libvirt")
    assert conf.compute.driver == "libvirt" and conf.libvirt.virt_type == "qemu"
    assert "virt_type=qemu" in said and str(tmp_path / "instances") in said


def test_config_file_wins_over_the_command_line(tmp_path):
    path = tmp_path / "stratus.conf"
    path.write_text("[compute]\ndriver = fake\n[libvirt]\nvirt_type = kvm\n")
    conf = conf_mod.load(str(path), {("DEFAULT", "state_path"): str(tmp_path)})
    assert "config file" in choose_hypervisor(conf, "libvirt")
    assert conf.compute.driver == "fake"
    path.write_text("[compute]\ndriver = libvirt\n[libvirt]\nvirt_type = kvm\n")
    conf = conf_mod.load(str(path), {("DEFAULT", "state_path"): str(tmp_path)})
    choose_hypervisor(conf, "fake")
    assert conf.compute.driver == "libvirt" and conf.libvirt.virt_type == "kvm"


def test_auto_falls_back_to_fake_saying_why(tmp_path, monkeypatch):
    from stratus import cli

    conf = conf_mod.load(None, {("DEFAULT", "state_path"): str(tmp_path)})
    monkeypatch.setattr(cli, "libvirt_reachable",
                        lambda uri: (False, f"libvirtd not reachable at {uri}: no socket"))
    said = choose_hypervisor(conf, "auto")
    assert conf.compute.driver == "fake"
    assert said == "fake (libvirtd not reachable at qemu:///system: no socket)"
    monkeypatch.setattr(cli, "libvirt_reachable", lambda uri: (True, f"{uri}, QEMU 7.2"))
    assert choose_hypervisor(conf, "auto").startswith("libvirt (qemu:///system, QEMU 7.2;")


def test_libvirt_paths_default_under_the_state_dir(tmp_path):
    conf = conf_mod.load(None, {("DEFAULT", "state_path"): str(tmp_path),
                                ("api", "port"): 9999})
    assert conf.libvirt.instances_path == str(tmp_path / "instances")
    assert conf.libvirt.images_path == str(tmp_path / "instances" / "_base")
    assert conf.service_user.auth_url == "http://127.0.0.1:9999/identity"


def test_image_cache_pass_runs_only_for_drivers_with_a_cache(cloud):
    manager = cloud.computes["host1"].manager
    names = [getattr(fn, "__name__", "") for _interval, fn in manager.periodic_tasks()]
    assert "run_image_cache_manager_pass" not in names  # fake: no cache
    calls = []
    manager.driver.capabilities = {**manager.driver.capabilities, "has_imagecache": True}
    manager.driver.manage_image_cache = lambda ctxt, instances: calls.append(instances)
    tasks = dict((getattr(fn, "__name__", ""), (interval, fn))
                 for interval, fn in manager.periodic_tasks())
    interval, run = tasks["run_image_cache_manager_pass"]
    assert interval == 2400.0
    cloud.boot("cached")
    run()
    assert [i["display_name"] for i in calls[0]] == ["cached"]


# -- personality files reach the guest (the config drive's openstack/content) ----------

def test_personality_files_are_injected(cloud):
    import base64

    server = cloud.boot("personal", personality=[
        {"path": "/etc/motd", "contents": base64.b64encode(b"hello\n").decode()}])
    output = console(cloud, server["id"], {}).get_json()["output"]
    assert "Wrote injected file /etc/motd" in output


def test_personality_limits_are_novas(cloud):
    import base64

    image = cloud.create_image()
    def create(files):
        return cloud.compute("POST", "/servers", {"server": {
            "name": "too-much", "flavorRef": "1", "imageRef": image, "personality": files}})
    one = base64.b64encode(b"x").decode()
    resp = create([{"path": f"/f{i}", "contents": one} for i in range(6)])
    assert resp.status_code == 403 and "Personality file limit exceeded" in resp.get_data(
        as_text=True)
    resp = create([{"path": "/big", "contents": base64.b64encode(b"x" * 10241).decode()}])
    assert resp.status_code == 403 and "exceeds maximum 10240" in resp.get_data(as_text=True)
    resp = create([{"path": "/" + "p" * 255, "contents": one}])
    assert resp.status_code == 403
