"""npuenv's test suite (a package so that ``tests.world`` imports from conftest and tests)."""
