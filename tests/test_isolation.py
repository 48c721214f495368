"""Per-person folders: init.sh run for real by bash and zsh in a temporary ROOT (with a space in its path).

Every run starts from a small controlled environment (`env -i` style): what init.sh promises must hold
whatever the box had set, and one person's shell must not see another's caches.
"""

from __future__ import annotations

import os
import pty
import re
import select
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from npuenv.errors import UsageError
from npuenv.users.add import add_user, install_shared_uv
from npuenv.users.checks import check_user
from npuenv.users.files import BACKUP_SUFFIX
from npuenv.users.initsh import MARKER, fill, read_init, render_init, render_shell_files
from npuenv.users.names import check_name, check_root, user_paths
from npuenv.users.folders import list_users
from npuenv.users.show import ssh_config
from npuenv.errors import IsolationError, RootError, UserNameError
from npuenv.results import Status
from npuenv.trust import CLIENT_VARS

HAVE_ZSH = shutil.which("zsh") is not None
SHELLS = ["bash", pytest.param("zsh", marks=pytest.mark.skipif(not HAVE_ZSH, reason="zsh is not installed"))]
# what a fresh SSH session has, plus things a shared box leaks from other people and other tools
BASE_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent/ma-user", "TERM": "dumb", "LANG": "C.UTF-8"}
LEAKED = {"HF_HUB_CACHE": "/tmp/someone/hub", "VIRTUAL_ENV": "/tmp/someone/.venv",
          "HISTFILE": "/tmp/someone/.history", "TRANSFORMERS_CACHE": "/tmp/someone/tf"}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "work dir"  # a space: every path in init.sh must be quoted
    path.mkdir()
    return path


def add(root: Path, name: str = "alice", **kwargs):
    kwargs.setdefault("environ", {})
    return add_user(root, name, **kwargs)


def run(init: Path, *args: str, env=None, cwd=None, input=None) -> subprocess.CompletedProcess:
    environ = {**BASE_ENV, **(env or {})}
    return subprocess.run([str(init), *args], env=environ, cwd=cwd or "/", input=input, capture_output=True,
                          text=True, timeout=60)


def probe(init: Path, env=None) -> dict[str, str]:
    proc = run(init, "-c", "env -0", env=env)
    assert proc.returncode == 0, proc.stderr
    return dict(item.split("=", 1) for item in proc.stdout.split("\0") if "=" in item)


def interactive(init: Path, lines: str, env=None, timeout: float = 20) -> str:
    """Run init.sh with no arguments on a terminal (ssh's RequestTTY, a VS Code terminal) and type `lines`."""
    environ = {**BASE_ENV, **(env or {})}
    pid, fd = pty.fork()
    if pid == 0:  # the child: exec or die, never return into pytest
        try:
            os.chdir("/")
            os.execve(str(init), [str(init)], environ)
        finally:
            os._exit(127)
    os.write(fd, lines.encode())
    out, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the shell exited
            break
        if not chunk:
            break
        out += chunk
    else:
        os.kill(pid, 9)
    os.waitpid(pid, 0)
    os.close(fd)
    return out.decode(errors="replace").replace("\r\n", "\n")


def append_mine(init: Path, text: str) -> None:
    with init.open("a", encoding="utf-8") as handle:
        handle.write(text)


def tree(path: Path) -> dict[str, tuple]:
    """Every file and folder under `path` with its content and mtime, to prove nothing was touched."""
    found = {}
    for item in sorted(path.rglob("*")):
        stat = item.lstat()
        content = item.read_bytes() if item.is_file() and not item.is_symlink() else None
        found[str(item.relative_to(path))] = (stat.st_mode, stat.st_mtime_ns, content)
    return found


# --- names and roots ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["alice", "bob-2", "z_x", "a", "a" * 32])
def test_good_names(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name, why", [
    ("", "empty"), ("a/b", "not a path"), ("../x", "not a path"), ("a.b", "dot"), (".local", "dot"),
    ("has space", "space"), ("Alice", "capital"), ("1abc", "starts with '1', not a letter"), ("-x", "option"),
    ("a" * 33, "longer"), ("a\nb", "control character ('\\n')"), ("ali$ce", ""), ("é", ""),
    ("root", "reserved"), ("ma-user", "reserved"), ("shared", "reserved"),
])
def test_bad_names_are_refused_clearly(name, why, root):
    with pytest.raises(UserNameError) as info:
        add(root, name)
    assert repr(name) in info.value.message and why in info.value.message
    assert "lowercase letters" in info.value.hint
    assert isinstance(info.value, UsageError) and info.value.exit_code == 2
    assert list(root.iterdir()) == []


def test_a_line_break_in_a_name_is_called_what_it_is(root):
    with pytest.raises(UserNameError) as info:
        add(root, "bob\nx")
    assert "control character" in info.value.message and "space" not in info.value.message


def test_bad_name_hint_suggests_one(root):
    with pytest.raises(UserNameError) as info:
        check_name("Zhang San")
    assert info.value.hint.endswith("e.g. zhang-san")


def test_roots_that_are_not_folders_are_refused(tmp_path):
    afile = tmp_path / "file"
    afile.write_text("x")
    colon = tmp_path / "a:b"
    colon.mkdir()
    for bad, words in [(tmp_path / "missing", "does not exist"), (afile, "is not a folder"), (colon, "':'")]:
        with pytest.raises(RootError) as info:
            add(bad)
        assert words in info.value.message
    assert check_root(tmp_path) == tmp_path


# --- the shell templates (users/shell/) ---------------------------------------------------------------------

def test_every_placeholder_of_the_templates_is_filled(tmp_path):
    odd = tmp_path / "@DIGEST@ @NAME@"  # a value is never looked into for placeholders
    odd.mkdir()
    paths = user_paths(odd, "alice")
    init = render_init(paths, "zsh")
    texts = [init, *render_shell_files(paths).values()]
    assert not [t for t in texts if re.search(r"@[A-Z_]+@", t.replace(str(odd), ""))]
    assert f"export HOME={shlex.quote(str(odd / 'alice'))}\n" in init
    assert read_init(init).state == "npuenv"
    with pytest.raises(KeyError, match="@SHELL@"):
        fill("exec @SHELL@ -l @NAME@", NAME="alice")


# --- user.add: the folder ------------------------------------------------------------------------------

def test_add_makes_the_folder_with_sensible_modes_and_nothing_else(root):
    result = add(root, shell="bash")
    home = root / "alice"
    assert result.created and result.init == "created" and result.paths.home == home
    assert [p.name for p in root.iterdir()] == ["alice"]  # nothing beside the person's folder
    mode = lambda p: (home / p).stat().st_mode & 0o777  # noqa: E731
    assert mode(".") == 0o755 and mode("init.sh") == 0o755 and mode("tmp") == 0o700
    assert mode(".cache") == 0o700 and mode(".local/bin") == 0o755
    assert mode(".npuenv/ca-bundle.pem") == 0o644 and mode(".npuenv/shell/bashrc") == 0o644
    assert "-----BEGIN CERTIFICATE-----" in (home / ".npuenv" / "ca-bundle.pem").read_text()
    assert result.bundle.total > 0
    text = (home / "init.sh").read_text()
    assert text.startswith("#!/bin/bash\n# npuenv-init 1 user=alice shell=bash sha256=")
    assert read_init(text).state == "npuenv"


def test_add_refuses_a_person_folder_that_is_a_file_or_a_symlink(root, tmp_path):
    (root / "alice").write_text("x")
    with pytest.raises(IsolationError, match="not a folder"):
        add(root)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (root / "bob").symlink_to(elsewhere)
    with pytest.raises(IsolationError) as caught:
        add(root, "bob")
    assert caught.value.message == f"{root / 'bob'} is a symlink (to {elsewhere}): user.add never writes through a link"
    assert list(elsewhere.iterdir()) == []


def test_add_never_writes_through_a_symlink_out_of_the_folder(root, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (root / "alice").mkdir()
    (root / "alice" / ".npuenv").symlink_to(elsewhere)
    with pytest.raises(IsolationError, match="outside"):
        add(root)
    assert list(elsewhere.iterdir()) == []


# --- init.sh: the environment, for real ---------------------------------------------------------------

@pytest.mark.parametrize("shell", SHELLS)
def test_init_sets_the_promised_environment(root, shell):
    result = add(root, shell=shell)
    home, bundle = root / "alice", str(root / "alice" / ".npuenv" / "ca-bundle.pem")
    env = probe(home / "init.sh", LEAKED)
    assert env["HOME"] == str(home) and env["NPUENV_USER"] == "alice"
    assert env["XDG_CONFIG_HOME"] == f"{home}/.config" and env["XDG_CACHE_HOME"] == f"{home}/.cache"
    assert env["XDG_DATA_HOME"] == f"{home}/.local/share" and env["XDG_STATE_HOME"] == f"{home}/.local/state"
    assert env["UV_CACHE_DIR"] == f"{home.parent}/.cache/uv"  # everyone's, and the cache bootstrap fills
    assert env["PIP_CACHE_DIR"] == f"{home}/.cache/pip" and env["HF_HOME"] == f"{home}/.cache/huggingface"
    assert env["TMPDIR"] == f"{home}/tmp" and (home / "tmp").is_dir()
    assert all(env[var] == bundle for var in CLIENT_VARS)
    assert env["PATH"].split(":")[:2] == [f"{home}/.local/bin", f"{root}/.local/bin"]
    assert env["PATH"].endswith(":/usr/bin:/bin")
    assert Path(env["SHELL"]).name == shell and result.shell == shell
    for leaked in LEAKED:  # another person's or tool's settings do not get through
        assert leaked not in env


@pytest.mark.parametrize("shell", SHELLS)
def test_a_command_passes_through_cleanly(root, shell):
    add(root, shell=shell)
    init = root / "alice" / "init.sh"
    proc = run(init, "-c", 'printf "%s|%s|%s" "$NPUENV_USER" "$1" "$PWD"; exit 3', "arg0", "one two")
    assert (proc.returncode, proc.stdout) == (3, f"alice|one two|{root}/alice")  # ssh lands in ma-user's home
    # stdin and stdout carry data untouched (what scp, rsync and pipes rely on), also with a noisy CANN
    cann = root / "alice" / "set_env.sh"
    cann.write_text('echo "CANN says hello"\n')
    data = "line 1\nline 2\x00binary\n"
    proc = run(init, "-c", "cat", input=data, env={"NPUENV_CANN_SET_ENV": str(cann)})
    assert proc.returncode == 0 and proc.stdout == data and "CANN says hello" in proc.stderr
    # a VS Code terminal opens in its folder and stays there
    proc = run(init, "-c", "pwd", cwd=str(root))
    assert proc.stdout.strip() == str(root)


@pytest.mark.parametrize("shell", SHELLS)
def test_cann_is_sourced_and_the_target_env_activated(root, shell):
    add(root, shell=shell)
    home = root / "alice"
    cann_root = root / "Ascend toolkit"
    (cann_root / "bin").mkdir(parents=True)
    set_env = cann_root / "set_env.sh"
    set_env.write_text(f'export ASCEND_TOOLKIT_HOME={shlex.quote(str(cann_root))}\n'
                       'export CANN_SAW_ARGS="$#"\n'
                       'export PATH="$ASCEND_TOOLKIT_HOME/bin:$PATH"\n')
    venv_bin = home / "MindSpeed-MM" / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "python").write_text("#!/bin/sh\necho 'the target env python'\n")
    (venv_bin / "python").chmod(0o755)
    env = probe(home / "init.sh", {"NPUENV_CANN_SET_ENV": str(set_env)})
    assert env["ASCEND_TOOLKIT_HOME"] == str(cann_root) and env["CANN_SAW_ARGS"] == "0"
    path = env["PATH"].split(":")
    assert path[:4] == [str(venv_bin), f"{home}/.local/bin", f"{root}/.local/bin", f"{cann_root}/bin"]
    assert env["VIRTUAL_ENV"] == str(home / "MindSpeed-MM" / ".venv")
    proc = run(home / "init.sh", "-c", "python", env={"NPUENV_CANN_SET_ENV": str(set_env)})
    assert proc.stdout == "the target env python\n"
    # no CANN here, no env: neither is an error
    (venv_bin / "python").unlink()
    env = probe(home / "init.sh", {"NPUENV_CANN_SET_ENV": str(root / "absent.sh")})
    assert "ASCEND_TOOLKIT_HOME" not in env and "VIRTUAL_ENV" not in env


@pytest.mark.parametrize("shell", SHELLS)
def test_the_prompt_shows_the_name(root, shell):
    add(root, shell=shell)
    proc = run(root / "alice" / "init.sh", "-i", "-c", 'printf "%s" "$PS1"')
    assert proc.stdout.startswith("(alice) "), proc.stdout


@pytest.mark.parametrize("shell", SHELLS)
def test_an_interactive_login_on_a_terminal(root, shell):
    """What ssh with RemoteCommand + RequestTTY and a VS Code terminal do: init.sh, no arguments, a tty."""
    add(root, shell=shell)
    home = root / "alice"
    (home / ".bashrc").write_text("export MY_RC=bash-read-mine\n")
    (home / ".zshrc").write_text("export MY_RC=zsh-read-mine\n")
    out = interactive(home / "init.sh", 'echo "V=$NPUENV_USER|$MY_RC|$PWD|$PATH|$HISTFILE"\nexit\n')
    assert "(alice) " in out  # the prompt
    line = next(x for x in out.splitlines() if x.startswith("V=alice"))
    _, rc, pwd, path, histfile = line[2:].split("|")
    assert rc == f"{shell}-read-mine" and pwd == str(home)
    # a login file that resets PATH (Debian's /etc/profile does) does not lose init.sh's entries
    assert path.split(":")[:2] == [f"{home}/.local/bin", f"{root}/.local/bin"]
    assert histfile == f"{home}/.{shell}_history"


def test_a_missing_zsh_falls_back_to_bash(root, tmp_path):
    add(root, shell="zsh")
    tools = tmp_path / "tools"  # a PATH with the basics and no zsh
    tools.mkdir()
    for tool in ("bash", "mkdir", "env", "cat"):
        (tools / tool).symlink_to(shutil.which(tool))
    init = root / "alice" / "init.sh"
    proc = run(init, "-c", 'printf "%s" "$SHELL"', env={"PATH": str(tools)})
    assert Path(proc.stdout).name == "bash" and proc.stderr == ""  # commands stay quiet about it
    proc = run(init, env={"PATH": str(tools)}, input="echo $NPUENV_USER\n")
    assert proc.stdout == "alice\n" and "zsh is not installed here" in proc.stderr


# --- idempotence and the owner's lines --------------------------------------------------------------------

def test_a_second_add_keeps_the_owners_lines(root):
    add(root, shell="bash")
    init = root / "alice" / "init.sh"
    append_mine(init, 'export MY_SETTING="kept value"\nexport HF_HOME="$HOME/models"\n')
    second = add(root, shell="zsh" if HAVE_ZSH else "bash")
    text = init.read_text()
    assert second.init == "updated" and second.backup is None and not second.created
    assert text.splitlines().count(MARKER) == 1
    assert text.endswith('export MY_SETTING="kept value"\nexport HF_HOME="$HOME/models"\n')
    env = probe(init)
    assert env["MY_SETTING"] == "kept value" and env["HF_HOME"] == str(root / "alice" / "models")
    # a third run with the same options changes nothing at all
    before = tree(root)
    third = add(root, shell="zsh" if HAVE_ZSH else "bash")
    assert third.init == "unchanged" and third.changed == [] and tree(root) == before


def test_hand_edits_above_the_marker_are_replaced_but_backed_up(root):
    add(root, shell="bash")
    init = root / "alice" / "init.sh"
    append_mine(init, "export MINE=1\n")
    edited = init.read_text().replace("export NPUENV_USER=alice", "export NPUENV_USER=alice\nexport OOPS=1")
    init.write_text(edited)
    assert read_init(edited).state == "edited"
    result = add(root, shell="bash")
    assert result.backup == init.with_name("init.sh" + BACKUP_SUFFIX)
    assert result.backup.read_text() == edited
    assert "OOPS" not in init.read_text() and init.read_text().endswith("export MINE=1\n")
    assert read_init(init.read_text()).state == "npuenv"


def test_an_init_sh_npuenv_did_not_write_is_refused_then_adopted(root):
    home = root / "alice"
    home.mkdir()
    own = "#!/bin/bash\nexport HOME=/home/ma-user/work/alice\nexec zsh\n"
    (home / "init.sh").write_text(own)
    with pytest.raises(IsolationError, match="not written by npuenv") as info:
        add(root)
    assert "--adopt" in info.value.hint and (home / "init.sh").read_text() == own
    result = add(root, adopt=True)
    assert result.backup.read_text() == own and read_init((home / "init.sh").read_text()).state == "npuenv"


def test_an_init_sh_without_its_marker_is_refused(root):
    add(root)
    init = root / "alice" / "init.sh"
    broken = init.read_text().replace(MARKER + "\n", "")
    init.write_text(broken)
    with pytest.raises(IsolationError, match="marker"):
        add(root)
    assert init.read_text() == broken


# --- two people side by side --------------------------------------------------------------------------------

@pytest.mark.parametrize("shell", SHELLS)
def test_two_people_do_not_see_each_others_caches(root, shell):
    add(root, "alice", shell=shell)
    add(root, "bob", shell=shell)
    alice, bob = root / "alice", root / "bob"
    for who in (alice, bob):
        venv_bin = who / "MindSpeed-MM" / ".venv" / "bin"
        venv_bin.mkdir(parents=True)
        (venv_bin / "python").write_text("#!/bin/sh\n")
        (venv_bin / "python").chmod(0o755)
    env_a, env_b = probe(alice / "init.sh"), probe(bob / "init.sh")
    for env, mine, other in ((env_a, alice, bob), (env_b, bob, alice)):
        for var in ("HOME", "XDG_CACHE_HOME", "PIP_CACHE_DIR", "HF_HOME", "TMPDIR", "VIRTUAL_ENV", "SSL_CERT_FILE"):
            assert env[var].startswith(f"{mine}/") or env[var] == str(mine), var
        assert str(other) not in "\n".join(f"{k}={v}" for k, v in env.items())
    # uv's cache is content-addressed and safe for concurrent use: one for everyone, so torch downloads once
    assert env_a["UV_CACHE_DIR"] == env_b["UV_CACHE_DIR"] == str(root / ".cache" / "uv")
    # what alice puts in her caches, bob does not see
    caches = 'for d in "$PIP_CACHE_DIR" "$HF_HOME" "$TMPDIR"; do '
    assert run(alice / "init.sh", "-c", caches + 'mkdir -p "$d" && echo a > "$d/alices"; done').returncode == 0
    look = caches + 'ls -A "$d"; done'
    assert "alices" not in run(bob / "init.sh", "-c", look).stdout
    assert run(alice / "init.sh", "-c", look).stdout.count("alices") == 3
    # bob's shell entered from inside alice's keeps nothing of hers
    nested = probe(bob / "init.sh", {k: v for k, v in env_a.items() if k not in ("PWD", "OLDPWD", "SHLVL")})
    assert str(alice) not in "\n".join(f"{k}={v}" for k, v in nested.items())
    assert nested["PATH"].split(":")[0] == str(bob / "MindSpeed-MM" / ".venv" / "bin")


def test_adding_one_person_never_touches_another(root):
    add(root, "bob", shell="bash")
    append_mine(root / "bob" / "init.sh", "export BOBS=1\n")
    before = tree(root / "bob")
    add(root, "alice", shell="bash")
    add(root, "alice", shell="zsh")
    assert tree(root / "bob") == before


# --- list, show, shared tools ------------------------------------------------------------------------------

def test_list_finds_people_npuenvs_and_others(root):
    add(root, "alice", shell="zsh")
    add(root, "bob", shell="bash")
    (root / "carol").mkdir()
    (root / "carol" / "init.sh").write_text("#!/bin/bash\nexec zsh\n")
    (root / "datasets").mkdir()  # no init.sh: not a person
    (root / "MindSpeed-MM").mkdir()
    (root / "MindSpeed-MM" / "init.sh").write_text("")  # not a user name
    users = list_users(root)
    assert [(u.name, u.state, u.shell, u.env) for u in users] == [
        ("alice", "npuenv", "zsh", False), ("bob", "npuenv", "bash", False), ("carol", "foreign", "", False)]


def test_ssh_config_quotes_the_path(root):
    add(root)
    text = ssh_config(user_paths(root, "alice"), "ict", "1.2.3.4", "22")
    lines = [line.strip() for line in text.splitlines()]
    assert lines[lines.index("Host ict") + 1:lines.index("Host ict") + 6] == [
        "HostName 1.2.3.4", "User ma-user", "Port 22",
        f"RemoteCommand {shlex.quote(str(root / 'alice' / 'init.sh'))}", "RequestTTY yes"]
    command = next(line for line in lines if line.startswith("RemoteCommand"))
    assert shlex.split(command.split(" ", 1)[1]) == [str(root / "alice" / "init.sh")]
    plain = lines[lines.index("Host ict-plain"):]
    assert not any(line.startswith(("RemoteCommand", "RequestTTY")) for line in plain)


def test_shared_uv_is_on_everyones_path(root):
    from npuenv.workspace import uv_binary

    add(root, "alice", shell="bash")
    uv = Path(uv_binary())
    dest = install_shared_uv(root, uv)
    assert dest == root / ".local" / "bin" / "uv" and dest.stat().st_mode & 0o777 == 0o755
    mtime = dest.stat().st_mtime_ns
    assert install_shared_uv(root, uv) == dest and dest.stat().st_mtime_ns == mtime  # already there
    proc = run(root / "alice" / "init.sh", "-c", "command -v uv && uv --version")
    assert proc.returncode == 0 and proc.stdout.startswith(f"{dest}\nuv ")


# --- persistence: doctor's isolation checks, run on the environment init.sh gives ------------------------------

def by_name(report) -> dict:
    return {o.check.name: o.result for o in report.outcomes}


def test_check_is_quiet_when_everything_is_under_the_persistent_root(root):
    add(root, shell="bash")
    report = check_user(root, "alice", BASE_ENV, persistent=root)
    results = by_name(report)
    assert list(results) == ["isolation.init", "isolation.tag", "isolation.home", "isolation.caches",
                             "isolation.models"]
    assert {name: r.status for name, r in results.items()} == dict.fromkeys(results, Status.OK)
    assert results["isolation.init"].finding == f"{root / 'alice' / 'init.sh'} (bash)"
    assert results["isolation.tag"].finding == "NPUENV_USER=alice"
    assert results["isolation.home"].finding == f"HOME={root / 'alice'}"
    cache = root / "alice" / ".cache"
    assert f"uv cache: {root / '.cache' / 'uv'} (UV_CACHE_DIR)" in results["isolation.caches"].details
    assert f"pip cache: {cache / 'pip'} (PIP_CACHE_DIR)" in results["isolation.caches"].details
    assert f"Hugging Face models: {cache / 'huggingface' / 'hub'} (HF_HOME)" in results["isolation.models"].details
    assert report.persistent == root and report.missing is None


def test_check_warns_about_what_lives_outside(root, tmp_path):
    add(root, shell="bash")
    home = root / "alice"
    append_mine(home / "init.sh", 'export HF_HOME=/tmp/hf-somewhere UV_CACHE_DIR="$HOME/.cache/uv"\n')
    volatile = tmp_path / "volatile ckpt"
    volatile.mkdir()
    (home / "MindSpeed-MM").mkdir()
    (home / "MindSpeed-MM" / "ckpt").symlink_to(volatile)
    results = by_name(check_user(root, "alice", BASE_ENV, persistent=root))
    models = results["isolation.models"]
    assert models.status is Status.WARN
    assert "Hugging Face models /tmp/hf-somewhere/hub" in models.finding
    assert f"checkpoints {home / 'MindSpeed-MM' / 'ckpt'} -> {volatile}" in models.finding
    assert "init.sh points HF_HOME into" in models.fix and f"{volatile} is a symlink" not in models.fix
    assert f"move {volatile} under {root} ({home / 'MindSpeed-MM' / 'ckpt'} is a symlink to it)" in models.fix
    assert "Hugging Face models: /tmp/hf-somewhere/hub (HF_HOME) — outside" in models.details
    assert results["isolation.caches"].status is Status.OK and results["isolation.home"].status is Status.OK
    # against a persistent root that does not hold ROOT, HOME (the person's folder) is flagged too
    other = tmp_path / "persistent"
    other.mkdir()
    results = by_name(check_user(root, "alice", BASE_ENV, persistent=other))
    assert results["isolation.home"].status is Status.WARN
    assert results["isolation.home"].finding == f"outside {other}, lost at a restart: HOME={home}"
    assert results["isolation.home"].fix == f"move {home} under {other} and run user.add there"
    assert results["isolation.caches"].status is Status.WARN


def test_check_of_a_home_overridden_below_the_marker(root, tmp_path):
    add(root, shell="bash")
    append_mine(root / "alice" / "init.sh", f"export HOME={shlex.quote(str(tmp_path))}\n")
    home = by_name(check_user(root, "alice", BASE_ENV, persistent=root))["isolation.home"]
    assert home.status is Status.WARN and f"HOME={tmp_path}" in home.finding
    assert home.fix == f"init.sh points HOME into {root / 'alice'}: remove what overrides it below its marker"


def test_check_reports_a_broken_init_sh(root):
    add(root, shell="bash")
    init = root / "alice" / "init.sh"
    init.chmod(0o644)
    results = by_name(check_user(root, "alice", BASE_ENV, persistent=root))
    assert results["isolation.init"].status is Status.FAIL and "not executable" in results["isolation.init"].finding
    assert results["isolation.init"].fix == f"chmod 755 {shlex.quote(str(init))}"
    # what init.sh would give cannot be known: the other checks say so instead of judging this shell
    assert {results[n].status for n in ("isolation.tag", "isolation.home", "isolation.models")} == {Status.SKIP}
    assert results["isolation.tag"].finding == "init.sh did not run (see isolation.init)"
    init.chmod(0o755)
    append_mine(init, "exit 3\n")
    results = by_name(check_user(root, "alice", BASE_ENV, persistent=root))
    assert results["isolation.init"].status is Status.FAIL and "-c failed (exit 3)" in results["isolation.init"].finding
    assert "-c env" in results["isolation.init"].fix
    init.write_text(init.read_text().replace("exit 3\n", "export NPUENV_USER=bob\n"))
    tag = by_name(check_user(root, "alice", BASE_ENV, persistent=root))["isolation.tag"]
    assert tag.status is Status.FAIL and tag.finding.startswith("NPUENV_USER is 'bob', not 'alice'")


def test_check_reports_what_init_sh_is(root):
    add(root, shell="bash")
    init = root / "alice" / "init.sh"
    init.write_text(init.read_text().replace("export NPUENV_USER=alice", "export NPUENV_USER=alice  # mine"))
    result = by_name(check_user(root, "alice", BASE_ENV, persistent=root))["isolation.init"]
    assert result.status is Status.WARN and "edited by hand" in result.finding
    init.write_text("#!/bin/bash\nexport NPUENV_USER=alice HOME=\"$(dirname \"$0\")\"\nexec bash \"$@\"\n")
    result = by_name(check_user(root, "alice", BASE_ENV, persistent=root))["isolation.init"]
    assert result.status is Status.WARN and result.finding.endswith("was not written by npuenv")
    assert result.fix.endswith("--adopt")


def test_check_of_an_unknown_person(root):
    with pytest.raises(IsolationError, match="no user 'nobody'") as info:
        check_user(root, "nobody", BASE_ENV, persistent=root)
    assert "user.add nobody" in info.value.hint


def test_check_stands_root_in_for_a_missing_persistent_folder(root, tmp_path):
    add(root, shell="bash")
    absent = tmp_path / "absent"
    report = check_user(root, "alice", {**BASE_ENV, "NPUENV_PERSISTENT_ROOT": str(absent)})
    assert report.persistent == root and report.missing == absent
    with pytest.raises(UsageError, match="--persistent"):
        check_user(root, "alice", BASE_ENV, persistent=absent)
