"""The CLI boundary, as a user meets it: `python -m invoke bootstrap ...` in a real subprocess.

Every bad input must end in one message on stderr that names what is wrong (file and line, key path,
argument or variable), a `hint:` where one helps, the exit code errors.py promises (2 for specs and
usage, 1 otherwise) and never a Python traceback.
"""

from __future__ import annotations

import platform
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest
import yaml

from npuenv.machine import Machine
from npuenv.plan import compile_steps
from npuenv.spec import load_spec
from tests.world.fixtures import clean_env

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SPEC = REPO / "env_specs" / "mindspeed-mm-internvl2.5.yaml"
# the steps README.md documents; the default spec may grow more (all of them are listed, in order)
STEP_IDS = ["python", "repo:mindspeed-mm", "repo:megatron", "repo:mindspeed", "copy:megatron",
            "patch:mindspeed-setup-no-pip", "overlay:dot-product-attention", "wheel:torch_npu", "env", "dirs"]
TASK_LINE = "bootstrap Provision the workspace from a spec: clone, patch, fetch, and fill the target env (resumable)."


def cli_env(**extra: str) -> Dict[str, str]:
    """The machine's environment without its CA presets and without any NPUENV_* setting of the user."""
    env = {k: v for k, v in clean_env().items() if not k.startswith("NPUENV_")}
    env.update(extra)
    return env


def run(argv: List[str], cwd: Path, env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, env=cli_env() if env is None else env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)


def invoke(cwd: Path, *args: str, env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "invoke", "--search-root", str(REPO), *args], cwd, env)


def bootstrap(tmp_path: Path, *args: str, root: Optional[Path] = None,
              env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    """`bootstrap --root tmp_path/ws ARGS`, run in tmp_path (so spec files show as their bare names)."""
    return invoke(tmp_path, "bootstrap", "--root", str(root or tmp_path / "ws"), *args, env=env)


def hint_of(proc: subprocess.CompletedProcess) -> str:
    hints = [line for line in proc.stderr.splitlines() if line.startswith("hint: ")]
    assert hints, f"no hint line on stderr:\n{proc.stderr}"
    return hints[-1]


def assert_refused(proc: subprocess.CompletedProcess, code: int, *needles: str) -> None:
    """Exit `code`, each needle on stderr, an `error:` line, and no traceback anywhere."""
    everything = proc.stdout + proc.stderr
    assert proc.returncode == code, everything
    assert "Traceback" not in everything
    assert "npuenv crashed" not in everything
    assert proc.stderr.startswith("error: ") or "\nerror: " in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in proc.stderr, f"{needle!r} not on stderr:\n{proc.stderr}"


def default_step_ids() -> List[str]:
    """Every step id of the default spec, in the order the spec compiles them."""
    return [step.id for step in compile_steps(load_spec(DEFAULT_SPEC), Machine.read({}))]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound (so nobody else takes it) but never listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


# --- specs --------------------------------------------------------------------------------------------

BAD_SPECS = {
    "malformed-yaml": (
        'extends: mindspeed-mm-internvl2.5\npython: "3.10"\n  index: https://pypi.org/simple\n',
        ["malformed-yaml.yaml:3:"],
        "YAML syntax",
    ),
    "unknown-key": (
        "extends: mindspeed-mm-internvl2.5\nrepos:\n  megatron:\n    comit: "
        "baf94af3c667248865f23df73b9fb8e2395e6fd0\n",
        ["unknown-key.yaml:4 repos.megatron.comit", "did you mean 'commit'?"],
        "names the file, line and key",
    ),
    "wrong-type": (
        "extends: mindspeed-mm-internvl2.5\ndirs: MindSpeed-MM/logs\n",
        ["wrong-type.yaml:2 dirs: expected a list, got a string"],
        "names the file, line and key",
    ),
    "python-float": (
        "extends: mindspeed-mm-internvl2.5\npython: 3.10\n",
        ["python-float.yaml:2 python:", "3.1", 'write "3.10" in quotes'],
        "names the file, line and key",
    ),
    "short-commit": (
        "extends: mindspeed-mm-internvl2.5\nrepos:\n  megatron:\n    commit: baf94af\n",
        ["short-commit.yaml:4 repos.megatron.commit:", "40", "'baf94af'"],
        "names the file, line and key",
    ),
    "verify-false": (
        "extends: mindspeed-mm-internvl2.5\nrepos:\n  megatron:\n    verify: false\n",
        ["verify-false.yaml:4 repos.megatron.verify:", "never turns off TLS verification"],
        "--ca-bundle",
    ),
    "two-problems": (
        "extends: mindspeed-mm-internvl2.5\npython: 3.10\nrepos:\n  mindspeed:\n    commit: core_r0.8.0\n",
        ["2 problems in the spec", "two-problems.yaml:2 python:", "two-problems.yaml:5 repos.mindspeed.commit:"],
        "names the file, line and key",
    ),
}


@pytest.mark.parametrize("name", list(BAD_SPECS))
def test_a_bad_spec_is_reported_with_file_line_and_key(tmp_path, name):
    text, needles, hint = BAD_SPECS[name]
    spec = write(tmp_path / f"{name}.yaml", text)
    proc = bootstrap(tmp_path, "--spec", str(spec), "--dry-run")
    assert_refused(proc, 2, *needles)
    assert hint in hint_of(proc)
    assert not (tmp_path / "ws" / "MindSpeed-MM").exists()


@pytest.mark.parametrize("given", ["missing.yaml", "no-such-spec"])
def test_a_spec_that_does_not_exist_lists_the_available_ones(tmp_path, given):
    proc = bootstrap(tmp_path, "--spec", given, "--dry-run")
    assert_refused(proc, 2, given)
    assert "mindspeed-mm-internvl2.5" in hint_of(proc)


# --- options --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("option", ["--only", "--force"])
def test_an_unknown_step_id_lists_the_valid_ones(tmp_path, option):
    proc = bootstrap(tmp_path, option, "repo:megatron,repo:no-such-repo", "--dry-run")
    assert_refused(proc, 2, "unknown step id: repo:no-such-repo")
    hint = hint_of(proc)
    assert "valid ids: " in hint
    assert all(step_id in hint for step_id in [*STEP_IDS, *default_step_ids()]), hint


def test_a_missing_ca_bundle_is_named(tmp_path):
    missing = tmp_path / "corp-ca.pem"
    proc = bootstrap(tmp_path, "--ca-bundle", str(missing), "--dry-run")
    assert_refused(proc, 1, str(missing), "does not exist", "--ca-bundle")
    assert "--ca-bundle" in hint_of(proc)


@pytest.mark.parametrize("value", ["abc", "0"])
def test_a_bad_jobs_value_is_a_usage_error(tmp_path, value):
    proc = bootstrap(tmp_path, "--jobs", value, "--dry-run")
    assert_refused(proc, 2, f"--jobs {value}")


def test_git_ssl_no_verify_in_the_environment_is_refused(tmp_path):
    proc = bootstrap(tmp_path, "--dry-run", env=cli_env(GIT_SSL_NO_VERIFY="1"))
    assert_refused(proc, 1, "GIT_SSL_NO_VERIFY=1", "never turns verification off")
    hint = hint_of(proc)
    assert "unset GIT_SSL_NO_VERIFY" in hint and "--ca-bundle" in hint


def test_a_malformed_npuenv_mirrors_is_named(tmp_path):
    proc = bootstrap(tmp_path, "--dry-run", env=cli_env(NPUENV_MIRRORS="https://github.com/"))
    assert_refused(proc, 2, "NPUENV_MIRRORS", "'https://github.com/'", "PREFIX=REPLACEMENT")
    assert "NPUENV_MIRRORS=" in hint_of(proc)


# --- the workspace root -------------------------------------------------------------------------------

def test_a_root_whose_parent_does_not_exist_is_refused(tmp_path):
    root = tmp_path / "nowhere" / "ws"
    proc = bootstrap(tmp_path, "--dry-run", root=root)
    assert_refused(proc, 2, f"--root {root}", str(root.parent))
    hint_of(proc)
    assert not root.parent.exists()


def test_a_root_that_is_a_file_is_refused(tmp_path):
    root = write(tmp_path / "ws", "not a folder\n")
    proc = bootstrap(tmp_path, "--dry-run", root=root)
    assert_refused(proc, 2, f"--root {root}", "not a folder")
    assert root.read_text() == "not a folder\n"


def test_without_root_or_npuenv_user_it_asks_for_root(tmp_path):
    proc = invoke(tmp_path, "bootstrap", "--dry-run")
    assert_refused(proc, 2, "pass --root DIR")
    assert "NPUENV_USER is not set" in hint_of(proc)


# --- --json ---------------------------------------------------------------------------------------------

def test_bootstrap_json_prints_the_plan_or_the_run_as_one_object(tmp_path, closed_port):
    import json

    planned = bootstrap(tmp_path, "--dry-run", "--json")
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)  # stdout holds the object and nothing else
    ids = [d["step"] for d in plan["plan"]]
    assert plan["dry_run"] and ids == default_step_ids() and plan["would_run"] == len(ids)
    assert {d["reason"] for d in plan["plan"]} >= {"missing"} and all(d["run"] for d in plan["plan"])
    spec = write(tmp_path / "unreachable.yaml",
                 f"extends: {DEFAULT_SPEC}\nmirrors:\n  'https://github.com/': 'https://127.0.0.1:{closed_port}/'\n")
    failed = bootstrap(tmp_path, "--spec", str(spec), "--only", "repo:megatron", "--json")
    assert failed.returncode == 1 and "step repo:megatron failed" in failed.stderr
    run = json.loads(failed.stdout)
    assert not run["dry_run"] and run["ok"] is False and run["counts"]["fail"] == 1
    [step] = run["steps"]
    assert step["step"] == "repo:megatron" and step["status"] == "fail"
    assert f"cannot reach 127.0.0.1:{closed_port}" in step["error"] and "NPUENV_MIRRORS" in step["hint"]
    assert step["log"].endswith("repo_megatron.log")


# --- the network --------------------------------------------------------------------------------------

def test_an_unreachable_host_is_named_and_mirrors_are_suggested(tmp_path, closed_port):
    spec = write(tmp_path / "unreachable.yaml",
                 f"extends: {DEFAULT_SPEC}\nmirrors:\n  'https://github.com/': 'https://127.0.0.1:{closed_port}/'\n")
    proc = bootstrap(tmp_path, "--spec", str(spec), "--only", "repo:megatron")
    assert_refused(proc, 1, "step repo:megatron failed", f"cannot reach 127.0.0.1:{closed_port}")
    assert "NPUENV_MIRRORS" in hint_of(proc)
    assert "✗ repo:megatron" in proc.stdout
    assert not (tmp_path / "ws" / "Megatron-LM").exists()
    assert (tmp_path / "ws" / ".npuenv" / "logs" / "repo_megatron.log").is_file()


def test_a_wheelhouse_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "wheels.txt").write_text("not a folder")
    proc = bootstrap(tmp_path, "--dry-run", "--wheels", str(tmp_path / "wheels.txt"))
    assert_refused(proc, 2, "--wheels", "exists and is not a folder")


# --- listing and planning -------------------------------------------------------------------------------

def task_listing(output: str) -> str:
    """The indented task lines of `--list`, whitespace-normalised (the help wraps at the terminal width)."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.rstrip().endswith(":")) + 1
    return " ".join(" ".join(lines[start:]).split())


def test_invoke_list_shows_bootstrap_with_its_one_line_help(tmp_path):
    proc = invoke(tmp_path, "--list")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert TASK_LINE in task_listing(proc.stdout)


def test_the_npuenv_console_script_lists_the_same_tasks(tmp_path):
    script = Path(sys.executable).parent / "npuenv"
    argv = [str(script)] if script.is_file() else [sys.executable, "-c", "from npuenv.cli import main; main()"]
    ours = run([*argv, "--list"], tmp_path)
    theirs = invoke(tmp_path, "--list")
    assert ours.returncode == 0, ours.stderr
    assert TASK_LINE in task_listing(ours.stdout)
    assert task_listing(ours.stdout) == task_listing(theirs.stdout)


def tasks_with_a_positional_argument() -> List[str]:
    from npuenv.tasks import ns

    return [name for name in ns.task_names if ns[name].positional]  # (get_arguments() would use up the help texts)


@pytest.mark.parametrize("name", tasks_with_a_positional_argument())
def test_task_help_after_a_task_that_takes_a_name_shows_its_help_and_does_nothing(tmp_path, name):
    """invoke's parser gives `--help` to a task's positional argument before it looks for flags: `user.add
    --help` used to refuse a user called '--help', `models.fetch --help` to look for a folder."""
    from npuenv.tasks import ns

    proc = invoke(tmp_path, name, "--help", env=cli_env(HOME=str(tmp_path)))
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert proc.stdout.startswith(f"Usage: invoke [--core-opts] {name} [--options]"), proc.stdout
    assert ns[name].__doc__.split()[0] in proc.stdout and "Options:" in proc.stdout
    assert list(tmp_path.iterdir()) == []


def test_task_help_through_the_npuenv_script_names_npuenv(tmp_path):
    script = Path(sys.executable).parent / "npuenv"
    assert script.is_file(), "the npuenv console script is installed with the project"
    for flag in ("-h", "--help"):
        proc = run([str(script), "user.add", flag], tmp_path)
        assert proc.returncode == 0 and proc.stdout.startswith("Usage: npuenv [--core-opts] user.add"), proc.stderr


def test_dry_run_lists_every_step_with_its_pins_and_changes_nothing(tmp_path):
    pins = yaml.safe_load(DEFAULT_SPEC.read_text())
    arch = {"arm64": "aarch64", "amd64": "x86_64"}.get(platform.machine().lower(), platform.machine().lower())
    wheels = REPO / "wheels"
    wheels_before = sorted(p.name for p in wheels.iterdir()) if wheels.is_dir() else None
    root = tmp_path / "ws"
    proc = bootstrap(tmp_path, "--dry-run", root=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    listed = re.findall(r"^  (?:run |skip)  (\S+)", proc.stdout, re.MULTILINE)
    assert listed == default_step_ids(), proc.stdout
    assert set(STEP_IDS) <= set(listed)
    assert f"{len(listed)} of {len(listed)} steps would run" in proc.stdout
    for name in ("mindspeed-mm", "megatron", "mindspeed"):
        assert pins["repos"][name]["commit"] in proc.stdout, name
    for name, repo in pins["repos"].items():
        assert f"repo:{name}" not in listed or repo["commit"] in proc.stdout, name
    assert pins["wheels"]["torch_npu"]["files"][arch]["sha256"] in proc.stdout
    assert not root.exists()  # a dry run writes nothing at all, not even the root or its lock
    assert (sorted(p.name for p in wheels.iterdir()) if wheels.is_dir() else None) == wheels_before


@pytest.mark.parametrize("make, problem", [("file", "is not a folder"), (None, "does not exist")])
def test_wheels_on_something_that_is_not_a_wheelhouse_is_a_usage_error(tmp_path, make, problem):
    given = tmp_path / "wheels"
    if make == "file":
        given.write_text("not a folder\n")
    proc = invoke(tmp_path, "wheels", "--wheels", str(given))
    assert proc.returncode == 2 and f"--wheels {given}: {problem}" in proc.stderr, proc.stdout + proc.stderr
    assert "empty" not in proc.stdout
