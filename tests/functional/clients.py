"""Helpers for the client-compatibility tests (test_novaclient.py,
test_compute_cli.py): the two kinds of cloud they run against, and the
unmodified ``openstack`` and ``nova`` command-line clients.

* :func:`all_in_one`: ``stratus all-in-one`` (memory transport, SQLite);
* :func:`deployment`: api, conductor, scheduler and two computes as separate
  processes over a throw-away RabbitMQ vhost and PostgreSQL database.

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
from typing import Any, Iterator


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
