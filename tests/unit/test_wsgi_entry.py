"""``stratus.wsgi:application`` serves the API from STRATUS_CONFIG."""
from __future__ import annotations

from werkzeug.test import Client

from stratus.db import migration


def test_application_builds_from_the_config_file(tmp_path, monkeypatch):
    import stratus.wsgi as entry

    conf = tmp_path / "stratus.conf"
    conf.write_text(f"[DEFAULT]\nstate_path = {tmp_path}\ntransport_url = memory://\n")
    migration.upgrade(f"sqlite:///{tmp_path}/stratus.sqlite")
    monkeypatch.setenv("STRATUS_CONFIG", str(conf))
    monkeypatch.setattr(entry, "_app", None)
    client = Client(entry.application)
    resp = client.get("/compute/")
    assert resp.status_code == 200
    assert resp.get_json()["versions"][-1]["id"] == "v2.1"
    assert client.get("/compute/v2.1/servers").status_code == 401
    assert entry._app is not None
    monkeypatch.setattr(entry, "_app", None)
