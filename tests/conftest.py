"""Every test session gets its own cache directory: tests never touch the user's cache."""

from __future__ import annotations

import os
import tempfile

import pytest

_SESSION_CACHE = tempfile.mkdtemp(prefix="graphc-test-cache-")
os.environ["GRAPHC_CACHE_DIR"] = _SESSION_CACHE


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir():
    from graphc.config import config

    config.cache_dir = _SESSION_CACHE
    yield
    import shutil

    shutil.rmtree(_SESSION_CACHE, ignore_errors=True)
