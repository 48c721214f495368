"""Shared fixtures: the hermetic world (tests/world/) is available to every test as `world`.

In CI (CI=true) a skipped test is a failure: a skip proves nothing, and .ci/run installs every tool,
Python and wheel the tests need, or fails naming it.
"""

import os

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
