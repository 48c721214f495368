"""The `invoke user.*` tasks as a person types them: real processes, exit codes, messages and hints."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import trustme

from npuenv.users.initsh import MARKER, read_init
from npuenv.tasks.user import ns as user_ns
from npuenv.trust import pem_certificates
from npuenv.users.jsonc import loads
from npuenv.users.vscode import DEFAULT_PROFILE_KEY, PROFILES_KEY

REPO = Path(__file__).resolve().parents[1]
TASKS = ("add", "list", "show", "vscode", "check")


def invoke(*args: str, env=None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "NPUENV_CA_BUNDLE"}
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "invoke", "--search-root", str(REPO), *args], env=environ,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "work dir"
    path.mkdir()
    return path


def test_every_task_is_listed_with_its_one_line_help():
    out = invoke("--list").stdout
    for name in TASKS:
        task = user_ns.tasks[name]
        assert f"user.{name}" in out
        doc = task.__doc__.strip()
        assert "\n" not in doc and doc.endswith(".")
        assert " ".join(doc.split()[:4]) in " ".join(out.split())


@pytest.mark.parametrize("name", TASKS)
def test_every_option_has_help(name):
    arguments = user_ns.tasks[name].get_arguments()  # invoke moves each help= text onto its argument
    assert arguments and all(arg.help for arg in arguments), [arg.name for arg in arguments if not arg.help]


def test_add_then_add_again(root):
    proc = invoke("user.add", "alice", "--root", str(root), "--shell", "bash")
    assert proc.returncode == 0, proc.stderr
    assert f"created {root}/alice (init.sh starts bash" in proc.stdout and "init.sh" in proc.stdout
    assert "user.show alice" in proc.stdout
    init = root / "alice" / "init.sh"
    with init.open("a") as handle:
        handle.write("export KEEP_ME=1\n")
    proc = invoke("user.add", "alice", "--root", str(root), "--shell", "bash")
    assert proc.returncode == 0 and proc.stdout.startswith(f"up to date: {root}/alice")
    assert init.read_text().endswith(MARKER + "\n# for example:\n# export WANDB_MODE=offline\n"
                                     "# export ASCEND_RT_VISIBLE_DEVICES=0,1,2,3\nexport KEEP_ME=1\n")
    out = subprocess.run([str(init), "-c", 'printf "%s" "$KEEP_ME:$NPUENV_USER"'], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin"}).stdout
    assert out == "1:alice"


def test_add_takes_extra_cas(root, tmp_path):
    cas = []
    for name in ("corp", "mirror"):
        path = tmp_path / f"{name}.pem"
        trustme.CA().cert_pem.write_to_path(str(path))
        cas.append(path)
    proc = invoke("user.add", "alice", "--root", str(root), "--ca-bundle", str(cas[0]), "--ca-bundle", str(cas[1]))
    assert proc.returncode == 0, proc.stderr
    bundle = pem_certificates((root / "alice" / ".npuenv" / "ca-bundle.pem").read_text())
    for ca in cas:
        assert pem_certificates(ca.read_text())[0] in bundle
    proc = invoke("user.add", "bob", "--root", str(root), "--ca-bundle", str(tmp_path / "missing.pem"))
    assert proc.returncode == 1 and "missing.pem (from --ca-bundle) does not exist" in proc.stderr
    assert not (root / "bob").exists()


@pytest.mark.parametrize("name", ["a/b", "../etc", "Alice", "a.b", "has space", "x" * 40])
def test_bad_names_exit_2_with_a_hint(root, name):
    proc = invoke("user.add", name, "--root", str(root))
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: user name {name!r} is not allowed")
    assert "\nhint: use 1-32 lowercase letters" in proc.stderr and "Traceback" not in proc.stderr
    assert list(root.iterdir()) == []


def test_bad_roots_exit_2(tmp_path):
    afile = tmp_path / "file"
    afile.write_text("")
    for bad, words in [(tmp_path / "missing", "does not exist"), (afile, "is not a folder")]:
        proc = invoke("user.add", "alice", "--root", str(bad))
        assert proc.returncode == 2 and f"error: --root {bad}: {words}" in proc.stderr
        assert "hint: pass the folder that holds everyone's folders" in proc.stderr


def test_bad_shell_exits_2(root):
    proc = invoke("user.add", "alice", "--root", str(root), "--shell", "fish")
    assert proc.returncode == 2 and "--shell fish" in proc.stderr and "zsh, bash" in proc.stderr


def test_list(root):
    assert "no users in" in invoke("user.list", "--root", str(root)).stdout
    invoke("user.add", "bob", "--root", str(root), "--shell", "bash")
    invoke("user.add", "alice", "--root", str(root), "--shell", "zsh")
    lines = invoke("user.list", "--root", str(root)).stdout.splitlines()
    assert lines[0].split() == ["name", "shell", "init.sh", "env", "folder"]
    assert [line.split()[:4] for line in lines[1:]] == [["alice", "zsh", "npuenv", "no"],
                                                         ["bob", "bash", "npuenv", "no"]]


def test_show_prints_ssh_and_vscode_snippets(root):
    invoke("user.add", "alice", "--root", str(root), "--shell", "zsh")
    proc = invoke("user.show", "alice", "--root", str(root), "--host", "ict", "--hostname", "1.2.3.4", "--port", "2222")
    assert proc.returncode == 0, proc.stderr
    init = str(root / "alice" / "init.sh")
    assert (f"Host ict\n    HostName 1.2.3.4\n    User ma-user\n    Port 2222\n"
            f"    RemoteCommand {shlex.quote(init)}\n    RequestTTY yes\n") in proc.stdout
    snippet = proc.stdout[proc.stdout.index(f'    "{PROFILES_KEY}"'):]
    data = loads("{" + snippet + "}")
    assert data == {PROFILES_KEY: {"zsh (alice)": {"path": init}}, DEFAULT_PROFILE_KEY: "zsh (alice)"}
    proc = invoke("user.show", "nobody", "--root", str(root))
    assert proc.returncode == 1 and "error: no user 'nobody'" in proc.stderr and "user.add nobody" in proc.stderr


def test_vscode(root):
    invoke("user.add", "alice", "--root", str(root), "--shell", "bash")
    project = root / "alice" / "proj"
    settings = project / ".vscode" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text('{\n    // mine\n    "editor.fontSize": 13,\n}\n')
    proc = invoke("user.vscode", "alice", "--project", str(project), "--root", str(root))
    assert proc.returncode == 0, proc.stderr
    assert f"updated {settings}: terminal profile 'bash (alice)' is the default" in proc.stdout
    assert "settings.json.npuenv-backup" in proc.stdout and "// mine" in settings.read_text()
    assert "up to date" in invoke("user.vscode", "alice", "--project", str(project), "--root", str(root)).stdout
    settings.write_text('{\n    "a": 1\n    "b": 2\n}\n')
    proc = invoke("user.vscode", "alice", "--project", str(project), "--root", str(root))
    assert proc.returncode == 1 and f"error: {settings}:3:5: expected ',' or '}}'" in proc.stderr
    assert "hint: fix the file" in proc.stderr
    assert settings.read_text() == '{\n    "a": 1\n    "b": 2\n}\n'
    proc = invoke("user.vscode", "alice", "--root", str(root))
    assert proc.returncode == 2 and "needs --project" in proc.stderr
    proc = invoke("user.vscode", "alice", "--project", str(root), "--root", str(root))
    assert proc.returncode == 2 and "not inside" in proc.stderr


def test_check(root, tmp_path):
    invoke("user.add", "alice", "--root", str(root), "--shell", "bash")
    proc = invoke("user.check", "alice", "--root", str(root), "--persistent", str(root))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"isolation of alice (the environment {root}/alice/init.sh gives)"
    assert lines[1].startswith("  ✓ isolation.init ") and lines[1].endswith(f"  {root}/alice/init.sh (bash)")
    assert lines[-1] == f"everything lives under {root}"
    with (root / "alice" / "init.sh").open("a") as handle:
        handle.write("export HF_HOME=/tmp/hf\n")
    proc = invoke("user.check", "alice", "--root", str(root), "--persistent", str(root))
    assert proc.returncode == 0 and "  ! isolation.models " in proc.stdout and proc.stdout.endswith("\n1 issue found\n")
    assert f"fix: init.sh points HF_HOME into {root}/alice" in proc.stdout
    proc = invoke("user.check", "alice", "--root", str(root), "--persistent", str(root), "--strict")
    assert proc.returncode == 1
    proc = invoke("user.check", "alice", "--root", str(root), "--persistent", str(tmp_path / "nope"))
    assert proc.returncode == 2 and "--persistent" in proc.stderr


def test_check_json_is_doctors_json(root):
    invoke("user.add", "alice", "--root", str(root), "--shell", "bash")
    (root / "alice" / "init.sh").chmod(0o644)
    proc = invoke("user.check", "alice", "--root", str(root), "--persistent", str(root), "--json")
    assert proc.returncode == 1, proc.stderr  # a failure exits 1 without --strict
    checks = {item["name"]: item for item in json.loads(proc.stdout)}
    assert list(checks) == ["isolation.init", "isolation.tag", "isolation.home", "isolation.caches",
                            "isolation.models"]
    keys = {"name", "group", "status", "finding", "fix", "details", "seconds"}  # doctor --json's
    assert all(set(item) == keys for item in checks.values())
    assert checks["isolation.init"]["status"] == "fail" and "not executable" in checks["isolation.init"]["finding"]
    assert checks["isolation.home"]["status"] == "skip"


def test_adopt_and_shared_tools(root):
    home = root / "carol"
    home.mkdir()
    (home / "init.sh").write_text("#!/bin/bash\nexec zsh\n")
    proc = invoke("user.add", "carol", "--root", str(root))
    assert proc.returncode == 1 and "not written by npuenv" in proc.stderr and "--adopt" in proc.stderr
    proc = invoke("user.add", "carol", "--root", str(root), "--adopt", "--shared-tools")
    assert proc.returncode == 0, proc.stderr
    assert "init.sh.npuenv-backup" in proc.stdout and f"shared uv: {root}/.local/bin/uv" in proc.stdout
    assert read_init((home / "init.sh").read_text()).state == "npuenv"
    assert sorted(p.name for p in root.iterdir()) == [".local", "carol"]
