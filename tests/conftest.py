"""Shared fixtures: the hermetic world (tests/world/) is available to every test as `world`.

In CI (CI=true) a skipped test is a failure: a skip proves nothing, and .ci/run installs every tool,
Python and wheel the tests need, or fails naming it.
"""

import os
from pathlib import Path

import pytest

pytest_plugins = ["tests.world.fixtures"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CI", "").lower() in ("1", "true", "yes") and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, which proves nothing: {reason} (.ci/run must install what this test needs)"


@pytest.fixture(scope="session", autouse=True)
def checkout_wheelhouse_untouched():
    """npuenv run from a checkout keeps its wheels in the checkout's wheels/: a test's bootstrap that forgets
    --wheels would fill it (and share wheels between tests). Nothing a test run adds may stay there."""
    wheels = Path(__file__).resolve().parents[1] / "wheels"
    before = set(os.listdir(wheels))
    yield
    added = sorted(set(os.listdir(wheels)) - before)
    assert not added, f"tests wrote {added} into {wheels}: give every bootstrap --wheels in its tmp_path"
