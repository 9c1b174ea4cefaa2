"""Fixtures of the client tests against the in-process cloud served over HTTP
(``test_clients_*.py``): ``served`` (cloud, base URL) per module and
``conn``, openstacksdk as its admin. A module may define its own ``conn``."""
from __future__ import annotations

from typing import Any, Iterator

import pytest

from tests.cloud import InProcessCloud
from tests.functional.clients import sdk_connect, served_in_process


@pytest.fixture(scope="module")
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[tuple[InProcessCloud, str]]:
    name = request.module.__name__.rsplit(".", 1)[-1]
    with served_in_process(tmp_path_factory.mktemp(name)) as served:
        yield served


@pytest.fixture(scope="module")
def conn(served: tuple[InProcessCloud, str]) -> Any:
    return sdk_connect(served[1])
