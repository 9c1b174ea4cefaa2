"""``stratus all-in-one`` as a user runs it: start, use, stop, start again."""
from __future__ import annotations

import subprocess

import pytest

from tests.functional.harness import BIN, AllInOne

pytestmark = pytest.mark.functional


def test_state_survives_a_restart_and_sigterm_is_clean(tmp_path):
    aio = AllInOne(str(tmp_path / "state"))
    aio.start()
    try:
        out = aio.process.log()
        assert f"export OS_CLIENT_CONFIG_FILE={aio.clouds_yaml}" in out
        assert "export OS_CLOUD=stratus" in out
        conn = aio.connect()
        image = conn.image.create_image(name="img", data=b"y" * 2048, disk_format="raw",
                                        container_format="bare")
        flavor = next(f for f in conn.compute.flavors() if f.name == "m1.tiny")
        server = conn.compute.create_server(name="keep", image_id=image.id,
                                            flavor_id=flavor.id, networks="none")
        server = conn.compute.wait_for_server(server, status="ACTIVE", wait=30, interval=0.1)
        password = aio.password
    finally:
        stopped = aio.stop()
    assert stopped == 0, aio.process.log()

    again = AllInOne(aio.state_dir)
    again.start()
    try:
        assert again.password == password
        conn = again.connect()
        kept = conn.compute.get_server(server.id)
        assert kept.name == "keep" and kept.status == "ACTIVE"
        assert conn.image.get_image(image.id).status == "active"
        data = conn.image.download_image(image.id)
        assert getattr(data, "content", data) == b"y" * 2048
        conn.compute.delete_server(kept)
        conn.compute.wait_for_delete(kept, wait=30, interval=0.1)
    finally:
        assert again.stop() == 0


def test_bad_config_value_stops_the_service_naming_the_option(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("[api]\nport = not-a-port\n")
    proc = subprocess.run([BIN, "api", "--config", str(conf)], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode != 0
    assert "[api] port" in proc.stderr


def test_config_sample_documents_every_option():
    proc = subprocess.run([BIN, "config", "sample"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0
    for needle in ("[DEFAULT]", "#transport_url = memory://", "[database]", "#connection",
                   "[compute]", "#driver = fake"):
        assert needle in proc.stdout
