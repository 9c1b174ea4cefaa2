"""Helpers for the client-compatibility tests (test_novaclient.py,
test_compute_cli.py, test_clients_*.py): the kinds of cloud they run
against, and the unmodified ``openstack`` and ``nova`` command-line clients.

* :func:`all_in_one`: ``stratus all-in-one`` (memory transport, SQLite);
* :func:`deployment`: api, conductor, scheduler and two computes as separate
  processes over a throw-away RabbitMQ vhost and PostgreSQL database;
* :func:`served_in_process`: the in-process test cloud served over real HTTP
  on a thread, with :func:`sdk_connect` and :func:`osc_in_process`.

Both yield an object with ``url``, ``password``, ``clouds_yaml`` and
``connect()`` (openstacksdk).
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import logging
import threading
from typing import Any, Iterator


from tests.cloud import ADMIN_PASSWORD, InProcessCloud
from tests.functional import harness

BIN_DIR = os.path.dirname(sys.executable)
OPENSTACK = os.path.join(BIN_DIR, "openstack")
NOVA = os.path.join(BIN_DIR, "nova")
KINDS = ("all-in-one", "deployment")


@contextlib.contextmanager
def all_in_one(tmp: str) -> Iterator[harness.AllInOne]:
    cloud = harness.AllInOne(tmp)
    cloud.start()
    try:
        yield cloud
    finally:
        assert cloud.stop() == 0, cloud.process.log()


def deployment(tmp: str) -> contextlib.AbstractContextManager[harness.Deployment]:
    return harness.running_deployment(tmp)


def _env(cloud: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    # Python warnings on stderr would read as a failed command in a batch.
    env.update(OS_CLIENT_CONFIG_FILE=cloud.clouds_yaml, OS_CLOUD="stratus",
               PYTHONWARNINGS="ignore")
    return env


def osc(cloud: Any, *args: str, parse: bool = True, ok: bool = True) -> Any:
    """Run ``openstack ARGS`` (with ``-f json`` when ``parse``) against ``cloud``."""
    cmd = [OPENSTACK, *args] + (["-f", "json"] if parse else [])
    proc = subprocess.run(cmd, env=_env(cloud), capture_output=True, text=True, timeout=120)
    if not ok:
        assert proc.returncode != 0, f"{' '.join(args)} succeeded:\n{proc.stdout}"
        return proc.stderr
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout) if parse and proc.stdout.strip() else proc.stdout


def nova_cli(cloud: Any, *args: str) -> str:
    """Run the ``nova`` CLI (environment variables: it reads no clouds.yaml)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(OS_AUTH_URL=f"{cloud.url}/identity", OS_USERNAME="admin",
               OS_PASSWORD=cloud.password, OS_PROJECT_NAME="admin",
               OS_USER_DOMAIN_NAME="Default", OS_PROJECT_DOMAIN_NAME="Default",
               OS_REGION_NAME="RegionOne")
    proc = subprocess.run([NOVA, *args], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"nova {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def table(text: str) -> list[dict[str, str]]:
    """The rows of a prettytable the ``nova`` CLI prints, as dicts."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    if not lines:
        return []
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in line.strip("|").split("|"))))
            for line in lines[1:]]


def wait_for(fetch: Any, predicate: Any, timeout: float = 60.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fetch()
        if predicate(last):
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}: {last}")


# Lines the clients print on stderr that are not errors.
BENIGN_STDERR = ("This command is deprecated",)


def osc_batch(cloud: Any, *commands: str) -> list[Any]:
    """Run several ``openstack`` commands in one process: OSC's interactive
    mode reads them from stdin, so Python starts (and the token is issued)
    once. Commands that print must ask for ``-f json``; their outputs come
    back parsed, in order. A command that fails prints on stderr, which fails
    the batch (OSC's interactive exit status says nothing)."""
    proc = subprocess.run([OPENSTACK], input="\n".join(commands) + "\n", env=_env(cloud),
                          capture_output=True, text=True, timeout=300)
    errors = [line for line in proc.stderr.splitlines()
              if line.strip() and not line.startswith(BENIGN_STDERR)]
    assert not errors, f"openstack batch failed:\n{proc.stderr}\n{proc.stdout}"
    decoder = json.JSONDecoder()
    docs, text, pos = [], proc.stdout, 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        doc, pos = decoder.raw_decode(text, pos)
        docs.append(doc)
    expected = sum(" -f json" in c for c in commands)
    assert len(docs) == expected, f"{len(docs)} outputs for {expected} commands:\n{text}"
    return docs


@contextlib.contextmanager
def served_in_process(tmp: Any, hosts: tuple[str, ...] = ("host1", "host2"),
                      ) -> Iterator[tuple[InProcessCloud, str]]:
    """An in-process cloud served over HTTP on a thread: (cloud, base URL)."""
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = harness.free_port()
    cloud = InProcessCloud(tmp, hosts=hosts, overrides={("api", "port"): port})
    server = make_server("127.0.0.1", port, cloud.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield cloud, f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        cloud.close()


def sdk_connect(url: str) -> Any:
    """openstacksdk as the in-process cloud's admin."""
    import openstack

    return openstack.connect(auth_url=f"{url}/identity", username="admin",
                             password=ADMIN_PASSWORD, project_name="admin",
                             user_domain_name="Default", project_domain_name="Default",
                             region_name="RegionOne", identity_api_version="3")


def osc_in_process(url: str, capture: Any, *args: str) -> Any:
    """``openstack *args`` as the admin, run in this process (so a
    monkeypatched maximum microversion applies); JSON parsed with ``-f json``.

    OSC caches each service's client on descriptors of its ClientManager
    *class* (osc_lib's ClientCache), so a second cloud in the same process
    would be sent to the first one's endpoints: the handles are dropped first.
    """
    from openstackclient import shell
    from osc_lib import clientmanager

    for attribute in vars(clientmanager.ClientManager).values():
        if isinstance(attribute, clientmanager.ClientCache):
            attribute._handle = None
    capture.readouterr()
    rc = shell.main(["--os-auth-url", f"{url}/identity", "--os-username", "admin",
                     "--os-password", ADMIN_PASSWORD, "--os-project-name", "admin",
                     "--os-user-domain-name", "Default", "--os-project-domain-name",
                     "Default", "--os-identity-api-version", "3", "--os-region-name",
                     "RegionOne", *args])
    captured = capture.readouterr()
    assert rc == 0, captured.out + captured.err
    return json.loads(captured.out) if "json" in args else captured.out
