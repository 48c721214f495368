"""Shared fixtures: the hermetic world (tests/world/) is available to every test as `world`."""

pytest_plugins = ["tests.world.fixtures"]
