"""Mirrors: prefix rewrites, git's insteadOf through GIT_CONFIG_*, parsing and layering."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from npuenv.errors import UsageError
from npuenv.mirrors import Mirrors, combine, local_path, parse_mirrors


def test_rewrite_replaces_the_matching_prefix():
    mirrors = Mirrors(rules=(("https://github.com/", "https://gitee.com/mirrors/"),))
    assert mirrors.rewrite("https://github.com/NVIDIA/apex.git") == "https://gitee.com/mirrors/NVIDIA/apex.git"


def test_rewrite_leaves_other_urls_alone():
    mirrors = Mirrors(rules=(("https://github.com/", "https://gitee.com/mirrors/"),))
    assert mirrors.rewrite("https://gitee.com/ascend/apex.git") == "https://gitee.com/ascend/apex.git"
    assert Mirrors(rules=()).rewrite("https://github.com/x") == "https://github.com/x"


def test_rewrite_longest_prefix_wins_whatever_the_order():
    rules = (
        ("https://github.com/", "https://general/"),
        ("https://github.com/dmlc/", "https://dmlc-mirror/"),
    )
    for ordered in (rules, rules[::-1]):
        mirrors = Mirrors(rules=ordered)
        assert mirrors.rewrite("https://github.com/dmlc/decord") == "https://dmlc-mirror/decord"
        assert mirrors.rewrite("https://github.com/NVIDIA/apex") == "https://general/NVIDIA/apex"


def test_git_env_without_existing_entries():
    mirrors = Mirrors(rules=(("https://github.com/", "https://mirror/gh/"),))
    assert mirrors.git_env({}) == {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "url.https://mirror/gh/.insteadOf",
        "GIT_CONFIG_VALUE_0": "https://github.com/",
    }


def test_git_env_appends_after_existing_entries():
    environ = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "user.name", "GIT_CONFIG_VALUE_0": "someone"}
    mirrors = Mirrors(rules=(("https://github.com/", "https://a/"), ("https://gitlab.com/", "https://b/")))
    env = mirrors.git_env(environ)
    assert env == {
        "GIT_CONFIG_COUNT": "3",
        "GIT_CONFIG_KEY_1": "url.https://a/.insteadOf",
        "GIT_CONFIG_VALUE_1": "https://github.com/",
        "GIT_CONFIG_KEY_2": "url.https://b/.insteadOf",
        "GIT_CONFIG_VALUE_2": "https://gitlab.com/",
    }
    assert "GIT_CONFIG_KEY_0" not in env  # the existing entry is the caller's, left as it is


def test_git_env_is_empty_without_rules():
    assert Mirrors(rules=()).git_env({"GIT_CONFIG_COUNT": "2"}) == {}


def test_git_env_refuses_a_broken_count():
    with pytest.raises(UsageError, match="GIT_CONFIG_COUNT"):
        Mirrors(rules=(("https://a/", "https://b/"),)).git_env({"GIT_CONFIG_COUNT": "two"})


def test_parse_newlines_semicolons_comments_and_blanks():
    text = """
    # the team's mirrors
    https://github.com/=https://gitee.com/mirrors/ ; https://pypi.org/=https://repo.example.cn/pypi/

    https://github.com/dmlc/decord=https://gitee.com/dmlc/decord
    # a comment; with a semicolon=in it
    """
    assert parse_mirrors(text, "NPUENV_MIRRORS") == [
        ("https://github.com/", "https://gitee.com/mirrors/"),
        ("https://pypi.org/", "https://repo.example.cn/pypi/"),
        ("https://github.com/dmlc/decord", "https://gitee.com/dmlc/decord"),
    ]


def test_parse_keeps_equals_signs_in_the_replacement():
    assert parse_mirrors("https://a/=https://b/?x=1/", "config") == [("https://a/", "https://b/?x=1/")]


@pytest.mark.parametrize("entry, fragment", [
    ("https://github.com/", "has no '='"),
    ("http://github.com/=https://mirror/", "'http://github.com/': http:// is refused"),
    ("https://github.com/=http://mirror/", "'http://mirror/': http:// is refused"),
    ("https://github.com/=ftp://mirror/", "'ftp://mirror/' is not an https:// URL, a file:// URL or an absolute path"),
    ("https://github.com/=", "is not an https:// URL, a file:// URL or an absolute path"),
    ("https://github.com/=https://mirror", "end both URLs with '/'"),
    ("file:///srv/git/=https://mirror/", "'file:///srv/git/' is not an https:// URL"),  # only replacements are local
    ("https://github.com/=file://server/srv/git/", "is not a file:// URL of an absolute path"),
    ("https://github.com/=srv/git/", "is not an https:// URL, a file:// URL or an absolute path"),
    ("https://github.com/=/srv/git", "end both URLs with '/'"),
])
def test_parse_errors_name_the_source_and_the_entry(entry, fragment):
    with pytest.raises(UsageError) as caught:
        parse_mirrors(f"https://ok/=https://fine/;{entry}", "NPUENV_MIRRORS")
    message = str(caught.value)
    assert message.startswith("NPUENV_MIRRORS:")
    assert repr(entry) in message
    assert fragment in message
    assert "PREFIX=REPLACEMENT" in caught.value.hint


def test_local_replacements_file_urls_and_absolute_paths():
    rules = parse_mirrors("https://gitee.com/=file:///srv/git/gitee.com/;https://github.com/=/srv/my git/github.com/",
                          "NPUENV_MIRRORS")
    assert rules == [("https://gitee.com/", "file:///srv/git/gitee.com/"),
                     ("https://github.com/", "file:///srv/my%20git/github.com/")]
    mirrors = combine(rules)
    assert mirrors.local
    assert mirrors.rewrite("https://github.com/dmlc/decord.git") == "file:///srv/my%20git/github.com/dmlc/decord.git"
    assert local_path(mirrors.rewrite("https://github.com/dmlc/dlpack")) == "/srv/my git/github.com/dmlc/dlpack"


def test_git_may_use_the_file_transport_only_when_a_mirror_is_local():
    remote = Mirrors(rules=(("https://github.com/", "https://mirror/gh/"),))
    local = Mirrors(rules=(("https://github.com/", "file:///srv/git/github.com/"),))
    assert "protocol.file.allow" not in remote.git_env({}).values()
    env = local.git_env({})
    assert env["GIT_CONFIG_COUNT"] == "2"
    assert (env["GIT_CONFIG_KEY_1"], env["GIT_CONFIG_VALUE_1"]) == ("protocol.file.allow", "always")


def _git_repo(path, files, env, *, submodule=None):
    """A repo at `path` with one commit of `files` (and a submodule `sub` at (url, sha)); returns its sha."""
    subprocess.run(["git", "init", "-q", "-b", "master", str(path)], env=env, check=True)
    for name, text in files.items():
        (path / name).write_text(text)
    if submodule:
        (path / ".gitmodules").write_text(f'[submodule "sub"]\n\tpath = sub\n\turl = {submodule[0]}\n')
    subprocess.run(["git", "add", "-A"], cwd=path, env=env, check=True)
    if submodule:
        subprocess.run(["git", "update-index", "--add", "--cacheinfo", f"160000,{submodule[1]},sub"], cwd=path,
                       env=env, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "one"], cwd=path, env=env, check=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_submodules_come_through_a_local_mirror_only_with_npuenvs_git_env(tmp_path):
    """Like decord: the submodule URL has no .git, the mirror folder holds bare `<name>.git` repos."""
    env = {"HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
           "PATH": os.environ.get("PATH", ""), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t.invalid"}
    mirror = tmp_path / "mirror" / "example.invalid" / "org"
    sub_sha = _git_repo(tmp_path / "sub-src", {"a.h": "int a;\n"}, env)
    _git_repo(tmp_path / "super-src", {"main.c": "int main;\n"}, env,
              submodule=("https://example.invalid/org/sub", sub_sha))
    for name in ("sub", "super"):
        subprocess.run(["git", "clone", "-q", "--bare", str(tmp_path / f"{name}-src"), str(mirror / f"{name}.git")],
                       env=env, check=True)
    mirrors = combine(parse_mirrors(f"https://example.invalid/org/={mirror}/", "NPUENV_MIRRORS"))
    with_mirror = {**env, **mirrors.git_env(env)}
    subprocess.run(["git", "clone", "-q", "https://example.invalid/org/super.git", str(tmp_path / "co")],
                   env=with_mirror, check=True)
    update = ["git", "submodule", "update", "--init", "--depth", "1"]
    rewrite_only = {**env, "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": with_mirror["GIT_CONFIG_KEY_0"],
                    "GIT_CONFIG_VALUE_0": with_mirror["GIT_CONFIG_VALUE_0"]}
    refused = subprocess.run(update, cwd=tmp_path / "co", env=rewrite_only, capture_output=True, text=True)
    assert refused.returncode != 0 and "transport 'file' not allowed" in refused.stderr
    subprocess.run(update, cwd=tmp_path / "co", env=with_mirror, check=True, capture_output=True)
    assert (tmp_path / "co" / "sub" / "a.h").read_text() == "int a;\n"


def test_combine_later_layers_override_the_same_prefix():
    spec = [("https://github.com/", "https://spec-mirror/"), ("https://pypi.org/", "https://spec-pypi/")]
    config = [("https://github.com/", "https://config-mirror/")]
    env = parse_mirrors("https://github.com/=https://env-mirror/", "NPUENV_MIRRORS")
    mirrors = combine(spec, config, env)
    assert mirrors.rewrite("https://github.com/x") == "https://env-mirror/x"
    assert mirrors.rewrite("https://pypi.org/simple/") == "https://spec-pypi/simple/"
    assert len(mirrors.rules) == 2
    assert combine(spec, config).rewrite("https://github.com/x") == "https://config-mirror/x"


def test_combine_of_nothing_rewrites_nothing():
    assert combine().rewrite("https://github.com/x") == "https://github.com/x"
    assert combine([], []).git_env({}) == {}


def test_git_itself_follows_the_mirrors_and_keeps_existing_entries(tmp_path):
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    environ = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "user.name", "GIT_CONFIG_VALUE_0": "someone",
               "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1", "PATH": os.environ.get("PATH", "")}
    mirrors = Mirrors(rules=(("https://github.com/", "https://mirror.example/gh/"),))
    env = {**environ, **mirrors.git_env(environ)}

    def git_out(*args: str) -> str:
        return subprocess.run([git, *args], env=env, cwd=tmp_path, capture_output=True, text=True,
                              check=True).stdout.strip()

    # --get-url expands insteadOf without talking to the remote.
    assert git_out("ls-remote", "--get-url", "https://github.com/NVIDIA/apex.git") == \
        "https://mirror.example/gh/NVIDIA/apex.git"
    assert git_out("config", "user.name") == "someone"
