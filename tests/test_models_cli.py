"""The models tasks' command lines: help on every task, and bad input refused with a message that names it,
before any network (the hub runs in tests/test_models_e2e.py)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli import assert_refused, cli_env, invoke


def env_with(persistent: Path, **extra: str) -> dict:
    env = cli_env()
    env.update({"NPUENV_PERSISTENT_ROOT": str(persistent), "NPUENV_USER": "", **extra})
    return env


def test_every_models_task_is_listed_with_its_help(tmp_path):
    listed = invoke(tmp_path, "--list")
    for name in ("models.fetch", "models.convert", "models.list"):
        assert name in listed.stdout
        helped = invoke(tmp_path, "--help", name)
        assert helped.returncode == 0 and "Docstring:" in helped.stdout and "--json" in helped.stdout


def test_list_shows_every_model_of_the_default_spec_as_absent(tmp_path):
    proc = invoke(tmp_path, "models.list", "--json", env=env_with(tmp_path))
    assert proc.returncode == 0, proc.stderr
    states = json.loads(proc.stdout)["models"]
    assert [(s["name"], s["state"]) for s in states][:2] == [("InternVL2_5-1B", "absent"), ("InternVL2_5-2B", "absent")]
    assert len(states) == 7


def test_an_unknown_model_is_refused_with_the_spec_s_models(tmp_path):
    proc = invoke(tmp_path, "models.fetch", "InternVL3-8B", env=env_with(tmp_path))
    assert_refused(proc, 2, "no model named 'InternVL3-8B'", "InternVL2_5-8B")


def test_a_persistent_folder_that_is_not_there_is_refused(tmp_path):
    proc = invoke(tmp_path, "models.fetch", "InternVL2_5-8B", "--persistent", str(tmp_path / "nowhere"),
                  env=env_with(tmp_path))
    assert_refused(proc, 2, "--persistent", "no such folder to keep models in")


def test_a_revision_that_is_not_a_commit_is_refused(tmp_path):
    proc = invoke(tmp_path, "models.fetch", "InternVL2_5-8B", "--revision", "main", env=env_with(tmp_path))
    assert_refused(proc, 2, "--revision main: expected a full commit")


def test_an_http_hub_endpoint_is_refused(tmp_path):
    proc = invoke(tmp_path, "models.fetch", "InternVL2_5-8B", env=env_with(tmp_path, HF_ENDPOINT="http://hub.example"))
    assert_refused(proc, 2, "HF_ENDPOINT gives 'http://hub.example': the hub must be an https:// server")
    assert not (tmp_path / "models" / "InternVL2_5-8B").exists()


def test_convert_needs_a_fetched_model(tmp_path):
    proc = invoke(tmp_path, "models.convert", "InternVL2_5-8B", "--root", str(tmp_path), env=env_with(tmp_path))
    assert_refused(proc, 2, f"InternVL2_5-8B is not fetched completely in {tmp_path}/models/InternVL2_5-8B",
                   "invoke models.fetch InternVL2_5-8B")


def test_config_without_a_kind_is_refused_naming_the_option_and_the_kinds(tmp_path):
    proc = invoke(tmp_path, "models.config", "InternVL2_5-8B", "--root", str(tmp_path), env=env_with(tmp_path))
    assert_refused(proc, 2, "models.config needs --kind", "--kind inference | model | data | finetune")
    assert list(tmp_path.iterdir()) == []
