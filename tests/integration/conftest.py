from __future__ import annotations

from pathlib import Path

import pytest
from clirun import provider_home


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return provider_home(tmp_path_factory.mktemp("provider"))
