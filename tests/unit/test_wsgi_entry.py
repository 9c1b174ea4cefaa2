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


def test_api_service_stops_promptly_with_idle_keep_alive_connections(conf, sqlite_db):
    """Clients' HTTP sessions keep connections open; stopping does not wait for
    them (it used to wait the whole shutdown timeout)."""
    import time

    import httpx

    from stratus import rpc
    from stratus.api.server import ApiService

    transport = rpc.get_transport("memory://")
    service = ApiService(conf, sqlite_db, transport)
    service.start()
    try:
        with httpx.Client() as client:
            url = f"http://127.0.0.1:{service.port}/compute/"
            assert client.get(url).status_code == 200
            assert client.get(url).status_code == 200  # the same connection, kept alive
            started = time.monotonic()
            service.stop(timeout=10)
            assert time.monotonic() - started < 5
            assert service._thread is not None and not service._thread.is_alive()
    finally:
        transport.cleanup()


def test_api_service_stop_lets_a_request_in_flight_finish(conf, sqlite_db):
    import threading
    import time

    import httpx

    from stratus import rpc
    from stratus.api.server import ApiService

    started = threading.Event()

    def slow_app(environ, start_response):
        started.set()
        time.sleep(0.5)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"done"]

    transport = rpc.get_transport("memory://")
    service = ApiService(conf, sqlite_db, transport)
    service.server.application = slow_app
    service.start()
    answers = []
    client = threading.Thread(target=lambda: answers.append(
        httpx.get(f"http://127.0.0.1:{service.port}/", timeout=10)))
    try:
        client.start()
        assert started.wait(5)
        service.stop(timeout=10)
        client.join(10)
        assert [(a.status_code, a.text) for a in answers] == [(200, "done")]
        assert not service._thread.is_alive()
    finally:
        transport.cleanup()
