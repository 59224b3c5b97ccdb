"""Every test session gets its own cache directory: tests never touch the user's cache."""

from __future__ import annotations

import os
import tempfile

import pytest

_SESSION_CACHE = tempfile.mkdtemp(prefix="graphc-test-cache-")
os.environ["GRAPHC_CACHE_DIR"] = _SESSION_CACHE


def pytest_addoption(parser):
    parser.addoption("--cuda", action="store_true",
                     help="also run every check_against_numpy with device='cuda' (needs a GPU)")


def pytest_configure(config):
    if config.getoption("--cuda"):
        from tests import helpers

        helpers.DEVICES.append("cuda")


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir():
    from graphc.config import config

    config.cache_dir = _SESSION_CACHE
    yield
    import shutil

    shutil.rmtree(_SESSION_CACHE, ignore_errors=True)
