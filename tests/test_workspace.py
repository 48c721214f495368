"""The workspace: where the root is, what is warned about it, and the environment every subprocess gets.

The persistent folder (/home/ma-user/work on ModelArts) is a folder in tmp_path here, passed in; the
mirrors are real `npuenv.mirrors` objects and the environment is checked with real git and real uv.
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Dict

import pytest

from npuenv import machine, workspace
from npuenv.errors import UsageError
from npuenv.mirrors import Mirrors, combine, parse_mirrors
from npuenv.spec import load_spec
from npuenv.workspace import Layout, child_env, default_wheels_dir, resolve_root, root_warnings

REPO = Path(__file__).resolve().parents[1]
CA_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO", "PIP_CERT")
PYTHON_DOWNLOADS = "https://github.com/astral-sh/python-build-standalone/releases/download"


def mirrors(text: str) -> Mirrors:
    return combine(parse_mirrors(text, "test"))


# --- resolve_root ---------------------------------------------------------------------------------------

def test_a_given_root_that_exists_is_used(tmp_path):
    assert resolve_root(str(tmp_path), {}) == tmp_path


def test_a_relative_root_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = resolve_root("ws", {})
    assert root.is_absolute() and root == tmp_path / "ws" and root.is_dir()


def test_a_root_with_a_tilde_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_root("~/ws", {}) == tmp_path / "ws"
    assert (tmp_path / "ws").is_dir()


def test_a_missing_root_with_an_existing_parent_is_created(tmp_path):
    root = resolve_root(str(tmp_path / "ws"), {})
    assert root == tmp_path / "ws"
    assert root.is_dir() and list(root.iterdir()) == []


def test_a_missing_parent_is_refused_and_nothing_is_made(tmp_path):
    given = tmp_path / "a" / "ws"
    with pytest.raises(UsageError) as info:
        resolve_root(str(given), {})
    assert str(given) in info.value.message and str(given.parent) in info.value.message
    assert info.value.hint and info.value.exit_code == 2
    assert not (tmp_path / "a").exists()


def test_a_root_that_is_a_file_is_refused(tmp_path):
    afile = tmp_path / "ws"
    afile.write_text("x")
    with pytest.raises(UsageError) as info:
        resolve_root(str(afile), {})
    assert str(afile) in info.value.message and "not a folder" in info.value.message
    assert afile.read_text() == "x"


def test_without_root_npuenv_user_picks_the_persistent_folder(tmp_path):
    persistent = tmp_path / "work"
    (persistent / "alice").mkdir(parents=True)
    assert resolve_root(None, {"NPUENV_USER": "alice"}, persistent=persistent) == persistent / "alice"
    assert resolve_root("", {"NPUENV_USER": "alice"}, persistent=persistent) == persistent / "alice"


def test_a_given_root_wins_over_npuenv_user(tmp_path):
    persistent = tmp_path / "work"
    (persistent / "alice").mkdir(parents=True)
    assert resolve_root(str(tmp_path / "mine"), {"NPUENV_USER": "alice"}, persistent=persistent) == tmp_path / "mine"


def test_npuenv_user_without_its_folder_asks_for_root(tmp_path):
    persistent = tmp_path / "work"
    persistent.mkdir()
    with pytest.raises(UsageError) as info:
        resolve_root(None, {"NPUENV_USER": "bob"}, persistent=persistent)
    assert "--root" in info.value.message
    assert f"{persistent}/$NPUENV_USER" in info.value.hint
    assert not (persistent / "bob").exists()


def test_neither_root_nor_npuenv_user_asks_for_root(tmp_path):
    with pytest.raises(UsageError) as info:
        resolve_root(None, {}, persistent=tmp_path)
    assert "--root" in info.value.message and "NPUENV_USER is not set" in info.value.hint


@pytest.mark.parametrize("user", ["/", "..", ".", "alice/../..", "/etc"])
def test_npuenv_user_is_a_name_not_a_path(tmp_path, user):
    persistent = tmp_path / "work" / "team"
    (persistent / "alice").mkdir(parents=True)
    with pytest.raises(UsageError) as info:
        resolve_root(None, {"NPUENV_USER": user}, persistent=persistent)
    assert "NPUENV_USER" in info.value.message and "--root" in info.value.hint


# --- root_warnings --------------------------------------------------------------------------------------

def test_a_root_inside_the_persistent_folder_is_not_warned_about(tmp_path):
    persistent = tmp_path / "work"
    (persistent / "alice" / "ws").mkdir(parents=True)
    assert root_warnings(persistent / "alice" / "ws", persistent) == []
    assert root_warnings(persistent, persistent) == []


def test_a_root_outside_the_persistent_folder_is_warned_about(tmp_path):
    persistent = tmp_path / "work"
    persistent.mkdir()
    root = tmp_path / "tmp-ws"
    root.mkdir()
    warnings = root_warnings(root, persistent)
    assert len(warnings) == 1
    assert str(root) in warnings[0] and str(persistent) in warnings[0]


def test_a_sibling_with_a_common_prefix_is_outside(tmp_path):
    persistent = tmp_path / "work"
    persistent.mkdir()
    (tmp_path / "workshop").mkdir()
    assert len(root_warnings(tmp_path / "workshop", persistent)) == 1


def test_a_link_is_judged_by_where_it_points(tmp_path):
    persistent = tmp_path / "work"
    (persistent / "alice").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    into = tmp_path / "into-work"
    into.symlink_to(persistent / "alice")
    out = persistent / "out"
    out.symlink_to(tmp_path / "elsewhere")
    assert root_warnings(into, persistent) == []
    assert len(root_warnings(out, persistent)) == 1


def test_off_modelarts_nothing_is_warned_about(tmp_path):
    assert root_warnings(tmp_path, tmp_path / "no-such-persistent-folder") == []


# --- child_env ------------------------------------------------------------------------------------------

@pytest.fixture
def layout(tmp_path) -> Layout:
    return Layout(tmp_path / "ws")


def base_environ(tmp_path: Path, **extra: str) -> Dict[str, str]:
    """A small, known environment (the machine's CA presets included, as on this box) for child_env."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path / "home"),
           "GIT_CONFIG_NOSYSTEM": "1", "SSL_CERT_FILE": "/etc/preset/ca.pem",
           "REQUESTS_CA_BUNDLE": "/etc/preset/ca.pem", "GIT_SSL_CAINFO": "/etc/preset/git.pem"}
    env.update(extra)
    return env


def test_every_client_gets_the_bundle(tmp_path, layout):
    environ = base_environ(tmp_path)
    env = child_env(layout, environ, layout.ca_bundle, Mirrors())
    for name in CA_VARIABLES:
        assert env[name] == str(layout.ca_bundle), name
    assert environ["SSL_CERT_FILE"] == "/etc/preset/ca.pem"  # the caller's mapping is not changed
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert env["PATH"] == environ["PATH"]


def test_temporary_files_of_every_command_go_under_the_root(tmp_path, layout):
    env = child_env(layout, base_environ(tmp_path, TMPDIR="/tmp"), layout.ca_bundle, Mirrors())
    assert env["TMPDIR"] == str(layout.root / ".npuenv" / "tmp")


def test_uv_dirs_live_inside_the_workspace_and_uv_uses_them(tmp_path, layout):
    env = child_env(layout, base_environ(tmp_path), layout.ca_bundle, Mirrors())
    for name in ("UV_CACHE_DIR", "UV_PYTHON_INSTALL_DIR"):
        assert Path(env[name]).is_absolute()
        assert Path(env[name]).is_relative_to(layout.home), name
    uv = workspace.uv_binary()
    cache = subprocess.run([uv, "cache", "dir"], env=env, capture_output=True, text=True, check=True)
    pythons = subprocess.run([uv, "python", "dir"], env=env, capture_output=True, text=True, check=True)
    assert Path(cache.stdout.strip()) == Path(env["UV_CACHE_DIR"])
    assert Path(pythons.stdout.strip()) == Path(env["UV_PYTHON_INSTALL_DIR"])


def git_url_rules(env: Dict[str, str]) -> list:
    proc = subprocess.run(["git", "config", "--get-regexp", r"^url\."], env=env, capture_output=True, text=True)
    return proc.stdout.splitlines()


def test_git_learns_the_mirrors(tmp_path, layout):
    rules = mirrors("https://github.com/=https://mirror.example/gh/;https://gitee.com/=https://mirror.example/ge/")
    env = child_env(layout, base_environ(tmp_path), layout.ca_bundle, rules)
    assert env["GIT_CONFIG_COUNT"] == "2"
    assert env["GIT_CONFIG_KEY_0"] == "url.https://mirror.example/gh/.insteadOf"
    assert env["GIT_CONFIG_VALUE_0"] == "https://github.com/"
    assert git_url_rules(env) == ["url.https://mirror.example/gh/.insteadof https://github.com/",
                                  "url.https://mirror.example/ge/.insteadof https://gitee.com/"]


def test_git_mirrors_are_appended_to_the_callers_own_git_config(tmp_path, layout):
    environ = base_environ(tmp_path, GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="url.https://own.example/.insteadOf",
                           GIT_CONFIG_VALUE_0="https://example.org/")
    env = child_env(layout, environ, layout.ca_bundle, mirrors("https://github.com/=https://mirror.example/gh/"))
    assert env["GIT_CONFIG_COUNT"] == "2"
    assert git_url_rules(env) == ["url.https://own.example/.insteadof https://example.org/",
                                  "url.https://mirror.example/gh/.insteadof https://github.com/"]


def test_without_mirrors_git_config_is_left_alone(tmp_path, layout):
    env = child_env(layout, base_environ(tmp_path), layout.ca_bundle, Mirrors())
    assert not any(name.startswith("GIT_CONFIG_") and name != "GIT_CONFIG_NOSYSTEM" for name in env)
    assert git_url_rules(env) == []


def test_uv_python_downloads_follow_a_github_mirror(tmp_path, layout):
    env = child_env(layout, base_environ(tmp_path), layout.ca_bundle,
                    mirrors("https://github.com/=https://mirror.example/gh/"))
    assert env["UV_PYTHON_INSTALL_MIRROR"] == \
        "https://mirror.example/gh/astral-sh/python-build-standalone/releases/download"


@pytest.mark.parametrize("rules", ["", "https://gitee.com/=https://mirror.example/ge/",
                                   "https://github.com/NVIDIA/=https://mirror.example/nv/"])
def test_uv_python_downloads_are_untouched_unless_github_is_mirrored(tmp_path, layout, rules):
    env = child_env(layout, base_environ(tmp_path), layout.ca_bundle, mirrors(rules))
    assert "UV_PYTHON_INSTALL_MIRROR" not in env


def test_the_users_own_uv_python_mirror_is_kept(tmp_path, layout):
    environ = base_environ(tmp_path, UV_PYTHON_INSTALL_MIRROR="https://own.example/python")
    env = child_env(layout, environ, layout.ca_bundle, mirrors("https://github.com/=https://mirror.example/gh/"))
    assert env["UV_PYTHON_INSTALL_MIRROR"] == "https://own.example/python"


# --- mirror layers, wheels, tools -----------------------------------------------------------------------

def test_mirror_layers_later_wins(tmp_path):
    spec_file = tmp_path / "mine.yaml"
    spec_file.write_text("extends: mindspeed-mm-internvl2.5\n"
                         "mirrors:\n  'https://github.com/': 'https://spec.example/'\n")
    spec = load_spec(str(spec_file))
    url = "https://github.com/NVIDIA/Megatron-LM.git"
    config = {"https://github.com/": "https://config.example/"}
    environ = {"NPUENV_MIRRORS": "https://github.com/=https://env.example/"}
    assert workspace.mirror_layers(spec, None, {}).rewrite(url) == "https://spec.example/NVIDIA/Megatron-LM.git"
    assert workspace.mirror_layers(spec, config, {}).rewrite(url) == "https://config.example/NVIDIA/Megatron-LM.git"
    assert workspace.mirror_layers(spec, config, environ).rewrite(url) == "https://env.example/NVIDIA/Megatron-LM.git"


def test_the_default_wheelhouse_is_this_checkouts_wheels_folder(tmp_path):
    assert default_wheels_dir(tmp_path / "ws") == REPO / "wheels"
    assert default_wheels_dir(tmp_path / "other") == REPO / "wheels"


def test_uv_is_an_absolute_runnable_binary_not_a_shim():
    uv = Path(workspace.uv_binary())
    assert uv.is_absolute() and os.access(uv, os.X_OK)
    assert "shims" not in uv.parts
    proc = subprocess.run([str(uv), "--version"], capture_output=True, text=True, check=True)
    assert proc.stdout.startswith("uv ")


def test_machine_names_the_architecture_as_wheels_do():
    expected = {"arm64": "aarch64", "amd64": "x86_64"}.get(platform.machine().lower(), platform.machine().lower())
    assert machine.arch() == expected
    assert machine.arch() in ("aarch64", "x86_64")
