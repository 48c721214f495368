"""A table of bad inputs across every task, run through the real CLI.

Each case asserts the exit code, a message that names the offending thing (option, file, key, variable),
no traceback and no crash, and that nothing was written outside the workspace root: the sandbox the case
runs in (its cwd, HOME and TMPDIR) changes only under the root, and this checkout's wheelhouse not at all.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import pytest
import trustme

from tests.world.fixtures import clean_env

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO / "env_specs" / "mindspeed-mm-internvl2.5.yaml"
SHA = "a" * 40
HEAD = f"extends: {DEFAULT}\n"  # a spec that extends the default and breaks one thing


@dataclass(frozen=True)
class Case:
    id: str
    argv: Tuple[str, ...]
    code: int
    says: str  # a fragment of stderr; {root}, {tmp} and {spec} are filled in
    spec: Optional[str] = None  # YAML written to {tmp}/bad.yaml, passed as --spec for bootstrap/doctor/smoke
    env: Dict[str, str] = field(default_factory=dict)
    setup: Optional[Callable[[Path], None]] = None


# --- set-ups ---------------------------------------------------------------------------------------------


def _file(relative: str, text: str = "x\n") -> Callable[[Path], None]:
    def make(tmp: Path) -> None:
        (tmp / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp / relative).write_text(text)
    return make


def _folder(relative: str) -> Callable[[Path], None]:
    return lambda tmp: (tmp / relative).mkdir(parents=True, exist_ok=True)


def _link(relative: str, to: str) -> Callable[[Path], None]:
    def make(tmp: Path) -> None:
        (tmp / to).mkdir(parents=True, exist_ok=True)
        (tmp / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp / relative).symlink_to(tmp / to)
    return make


def _both(*makers: Callable[[Path], None]) -> Callable[[Path], None]:
    def make(tmp: Path) -> None:
        for maker in makers:
            maker(tmp)
    return make


def _state(text: str) -> Callable[[Path], None]:
    return _file("ws/.npuenv/state.json", text)


def _person(name: str) -> Callable[[Path], None]:
    """ROOT/NAME made by user.add, for the user.* cases that need someone."""
    def make(tmp: Path) -> None:
        (tmp / "people").mkdir(exist_ok=True)
        subprocess.run(npuenv("user.add", name, "--root", str(tmp / "people"), "--shell", "bash"), cwd=tmp,
                       env=sandbox_env(tmp), check=True, capture_output=True, stdin=subprocess.DEVNULL)
    return make


def _pem(relative: str) -> Callable[[Path], None]:
    return lambda tmp: trustme.CA().cert_pem.write_to_path(str(tmp / relative))


# --- the table ---------------------------------------------------------------------------------------------

BOOT = ("bootstrap", "--root", "{root}", "--dry-run")
SPEC_CASES = [
    ("spec-yaml-syntax", "name: [unclosed\n", "bad.yaml:2:1: did not find expected ',' or ']'"),
    ("spec-top-is-a-list", "- a\n- b\n", "expected a mapping of keys at the top level"),
    ("spec-python-float", HEAD + "python: 3.10\n", "python: YAML reads 3.10 as the number 3.1"),
    ("spec-python-garbage", HEAD + "python: 'three'\n", "python: expected a Python version"),
    ("spec-commit-short", HEAD + "repos: {megatron: {commit: abc}}\n", "repos.megatron.commit: expected a full commit id"),
    ("spec-url-http", HEAD + "repos: {megatron: {url: 'http://github.com/x.git'}}\n", "repos.megatron.url: http:// is refused"),
    ("spec-url-not-url", HEAD + "repos: {megatron: {url: 'github.com/x'}}\n", "repos.megatron.url: expected an https:// URL"),
    ("spec-verify-false", HEAD + "repos: {megatron: {verify: false}}\n", "never turns off TLS verification"),
    ("spec-unknown-key", HEAD + "repoz: {}\n", "unknown key 'repoz': did you mean 'repos'?"),
    ("spec-unknown-repo-key", HEAD + "repos: {megatron: {comit: x}}\n", "repos.megatron.comit: unknown key"),
    ("spec-extends-missing", "extends: no-such-spec\n", "extends: no spec 'no-such-spec'"),
    ("spec-extends-self", "extends: bad.yaml\n", "extends: cycle"),
    ("spec-extends-number", "extends: 3\n", "extends: expected a spec name or path"),
    ("spec-repo-path-absolute", HEAD + "repos: {megatron: {path: /etc}}\n", "repos.megatron.path: '/etc' is absolute"),
    ("spec-repo-path-climbs", HEAD + "repos: {megatron: {path: ../up}}\n", "repos.megatron.path: '../up' contains '..'"),
    ("spec-repo-path-dup", HEAD + "repos: {megatron: {path: MindSpeed-MM}}\n", "is also the path of repo"),
    ("spec-dirs-climb", HEAD + "dirs: ['../x']\n", "dirs[0]: '../x' contains '..'"),
    ("spec-wheels-glob-climbs", HEAD + "builds: {apex: {wheels: '../../outside/*'}}\n",
     "builds.apex.wheels: '../../outside/*' contains '..'"),
    ("spec-clean-absolute", HEAD + "builds: {apex: {clean: [/tmp]}}\n", "builds.apex.clean[0]: '/tmp' is absolute"),
    ("spec-copy-to-climbs", HEAD + "copies: {megatron: {to: '../megatron'}}\n", "copies.megatron.to: '../megatron' contains '..'"),
    ("spec-overlay-unknown-repo", HEAD + "overlays: {dot-product-attention: {to: {repo: nope}}}\n",
     "overlays.dot-product-attention.to.repo: no repo named 'nope'"),
    ("spec-bad-sha256", HEAD + "wheels: {torch_npu: {files: {x86_64: {sha256: xyz}}}}\n",
     "wheels.torch_npu.files.x86_64.sha256: expected a sha256"),
    ("spec-wheel-wrong-arch", HEAD + "wheels: {torch_npu: {files: {x86_64: {filename: "
                                     "torch_npu-2.1.0.post8-cp310-cp310-manylinux_2_17_aarch64.whl}}}}\n",
     "is not a wheel for x86_64"),
    ("spec-wheel-unknown-arch", HEAD + "wheels: {torch_npu: {files: {arm64: {sha256: '" + "0" * 64 + "'}}}}\n",
     "unknown architecture 'arm64'"),
    ("spec-wheel-version-float", HEAD + "wheels: {torch_npu: {version: 2.1}}\n", "wheels.torch_npu.version: YAML reads"),
    ("spec-bad-requirement", HEAD + "env: {packages: ['torch>>2']}\n", "env.packages[0]: not a valid requirement"),
    ("spec-requirement-http", HEAD + "env: {packages: ['x @ http://e.org/x.whl']}\n", "env.packages[0]: http:// is refused"),
    ("spec-source-unknown-index", HEAD + "env: {sources: {torch: {index: nope}}}\n", "env.sources.torch.index: no index named 'nope'"),
    ("spec-source-bad-arch", HEAD + "env: {sources: {torch: {arch: [sparc]}}}\n", "unknown architecture 'sparc'"),
    ("spec-index-http", HEAD + "indexes: {pytorch-cpu: 'http://download.pytorch.org/whl/cpu'}\n", "indexes.pytorch-cpu: http:// is refused"),
    ("spec-build-strategy", HEAD + "builds: {decord: {strategy: fast}}\n", "builds.decord.strategy: expected one of"),
    ("spec-build-command-string", HEAD + "builds: {decord: {commands: ['make all']}}\n",
     "builds.decord.commands[0]: give the command as a list of arguments"),
    ("spec-build-bad-version", HEAD + "builds: {apex: {version: '0.1-ascend'}}\n", "builds.apex.version: '0.1-ascend' is not a valid version"),
    ("spec-when-bad-condition", HEAD + "patches: {decord-ffmpeg5: {when: {pkgconfig: libavcodec, version: new}}}\n",
     "patches.decord-ffmpeg5.when.version: 'new' is not a version condition"),
    ("spec-patch-file-missing", HEAD + "patches: {mindspeed-setup-no-pip: {file: nowhere.patch}}\n", "no such patch file"),
    ("spec-mirror-http", HEAD + "mirrors: {'https://github.com/': 'http://m/'}\n", "http:// is refused"),
    ("spec-mirror-relative", HEAD + "mirrors: {'https://github.com/': 'git/m/'}\n", "is not an https:// URL, a file:// URL or an absolute path"),
    ("spec-name-bad", HEAD + "name: 'My Spec'\n", "name: 'My Spec' must match"),
    ("spec-duplicate-key", "name: a\nname: b\npython: '3.10'\n", "duplicate key 'name'"),
    ("spec-alias-bomb", "name: bomb\npython: '3.10'\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
     + "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 8)),
     "expand to more than 100000 values"),
]

CASES = [Case(f"bootstrap-{sid}", (*BOOT, "--spec", "{spec}"), 2, says, spec=body) for sid, body, says in SPEC_CASES]
CASES += [
    Case("bootstrap-spec-not-utf8", (*BOOT, "--spec", "{tmp}/latin1.yaml"), 2, "latin1.yaml: cannot read the spec",
         setup=lambda tmp: (tmp / "latin1.yaml").write_bytes(b"name: caf\xe9\n")),
    Case("bootstrap-spec-huge", (*BOOT, "--spec", "{tmp}/huge.yaml"), 2, "a spec is at most 1048576 bytes",
         setup=_file("huge.yaml", "name: h\n# " + "x" * (2 << 20) + "\n")),
    Case("bootstrap-spec-no-such-name", (*BOOT, "--spec", "no-such-spec"), 2, "no spec named 'no-such-spec'"),
    Case("bootstrap-spec-missing-file", (*BOOT, "--spec", "{tmp}/gone.yaml"), 2, "gone.yaml: spec file does not exist"),
    Case("bootstrap-spec-is-a-folder", (*BOOT, "--spec", "{tmp}/d.yaml"), 2, "d.yaml: spec file is not a file",
         setup=_folder("d.yaml")),
    Case("bootstrap-jobs-zero", (*BOOT, "--jobs", "0"), 2, "--jobs 0: expected at least 1"),
    Case("bootstrap-jobs-word", (*BOOT, "--jobs", "many"), 2, "--jobs many: expected a whole number"),
    Case("bootstrap-jobs-fraction", (*BOOT, "--jobs", "1.5"), 2, "--jobs 1.5: expected a whole number"),
    Case("bootstrap-only-unknown", (*BOOT, "--only", "repo:nope"), 2, "unknown step id: repo:nope"),
    Case("bootstrap-force-unknown", (*BOOT, "--force", "build:nope,env"), 2, "unknown step id: build:nope"),
    Case("bootstrap-root-is-a-file", ("bootstrap", "--root", "{tmp}/afile", "--dry-run"), 2, "--root {tmp}/afile: exists and is not a folder",
         setup=_file("afile")),
    Case("bootstrap-root-parent-missing", ("bootstrap", "--root", "{tmp}/a/b/c", "--dry-run"), 2,
         "--root {tmp}/a/b/c: neither it nor its parent folder"),
    Case("bootstrap-no-root", ("bootstrap", "--dry-run"), 2, "no workspace root: pass --root DIR"),
    Case("bootstrap-npuenv-user-path", ("bootstrap", "--dry-run"), 2, "NPUENV_USER='../x' is not a user name",
         env={"NPUENV_USER": "../x"}),
    Case("bootstrap-npuenv-folder-leads-out", BOOT, 2, "{root}/.npuenv leads outside the workspace root",
         setup=_link("ws/.npuenv", "elsewhere")),
    Case("bootstrap-python-missing", (*BOOT, "--python", "{tmp}/nope/python3.10"), 2, "--python {tmp}/nope/python3.10: no such file"),
    Case("bootstrap-python-not-python", (*BOOT, "--python", "{tmp}/python3.10"), 2, "--python {tmp}/python3.10: it does not run",
         setup=_file("python3.10", "#!/bin/sh\nexit 3\n")),
    Case("bootstrap-python-wrong-version", (*BOOT, "--python", sys.executable), 2, f"--python {sys.executable}: wanted CPython 3.10"),
    Case("bootstrap-ca-missing", ("bootstrap", "--root", "{root}", "--only", "python", "--ca-bundle", "{tmp}/ca.pem"), 1,
         "CA bundle {tmp}/ca.pem (from --ca-bundle) does not exist"),
    Case("bootstrap-ca-folder", ("bootstrap", "--root", "{root}", "--only", "python", "--ca-bundle", "{tmp}/cas"), 1,
         "CA bundle {tmp}/cas (from --ca-bundle) is not a file", setup=_folder("cas")),
    Case("bootstrap-ca-not-pem", ("bootstrap", "--root", "{root}", "--only", "python", "--ca-bundle", "{tmp}/ca.der"), 1,
         "CA bundle {tmp}/ca.der holds no PEM certificate", setup=_file("ca.der", "\x30\x82 binary")),
    Case("bootstrap-ca-env-missing", ("bootstrap", "--root", "{root}", "--only", "python"), 1,
         "CA bundle {tmp}/corp.pem (from NPUENV_CA_BUNDLE) does not exist", env={"NPUENV_CA_BUNDLE": "{tmp}/corp.pem"}),
    Case("bootstrap-git-ssl-no-verify", BOOT, 1, "GIT_SSL_NO_VERIFY=1", env={"GIT_SSL_NO_VERIFY": "1"}),
    Case("bootstrap-pythonhttpsverify", BOOT, 1, "PYTHONHTTPSVERIFY=0", env={"PYTHONHTTPSVERIFY": "0"}),
    Case("bootstrap-uv-insecure-host", BOOT, 1, "UV_INSECURE_HOST=pypi.org", env={"UV_INSECURE_HOST": "pypi.org"}),
    Case("bootstrap-git-sslverify-config", BOOT, 1, "GIT_CONFIG_KEY_0=http.sslVerify",
         env={"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.sslVerify", "GIT_CONFIG_VALUE_0": "false"}),
    Case("bootstrap-git-config-count", BOOT, 2, "GIT_CONFIG_COUNT='two' is not a number",
         env={"GIT_CONFIG_COUNT": "two", "NPUENV_MIRRORS": "https://github.com/=https://m/"}),
    Case("bootstrap-mirrors-no-equals", BOOT, 2, "NPUENV_MIRRORS: mirror entry 'https://github.com/' has no '='",
         env={"NPUENV_MIRRORS": "https://github.com/"}),
    Case("bootstrap-mirrors-http", BOOT, 2, "'http://m/': http:// is refused", env={"NPUENV_MIRRORS": "https://github.com/=http://m/"}),
    Case("bootstrap-mirrors-ftp", BOOT, 2, "'ftp://m/' is not an https:// URL", env={"NPUENV_MIRRORS": "https://github.com/=ftp://m/"}),
    Case("bootstrap-mirrors-slashes", BOOT, 2, "end both URLs with '/' or neither",
         env={"NPUENV_MIRRORS": "https://github.com/=https://m"}),
    Case("bootstrap-mirrors-file-host", BOOT, 2, "is not a file:// URL of an absolute path",
         env={"NPUENV_MIRRORS": "https://github.com/=file://host/srv/"}),
    Case("bootstrap-wheels-is-a-file", (*BOOT, "--wheels", "{tmp}/w"), 2, "--wheels {tmp}/w: exists and is not a folder",
         setup=_file("w")),
    Case("bootstrap-state-corrupt", BOOT, 1, "cannot read the state file {root}/.npuenv/state.json", setup=_state("{not json")),
    Case("bootstrap-state-format", BOOT, 1, "has state format 99", setup=_state('{"format": 99, "steps": {}}')),
    Case("bootstrap-recorded-spec-gone", BOOT, 2, "which no longer exists",
         setup=_state('{"format": 1, "steps": {}, "spec": {"name": "gone", "file": "/nowhere/gone.yaml", '
                      '"arg": "/nowhere/gone.yaml"}}')),
    # doctor
    Case("doctor-unknown-check", ("doctor", "--root", "{root}", "--check", "sytem"), 2, "unknown check: sytem"),
    Case("doctor-log-missing", ("doctor", "--log", "{tmp}/train.log"), 2, "--log {tmp}/train.log: no such file"),
    Case("doctor-log-folder", ("doctor", "--log", "{tmp}/logs"), 2, "--log {tmp}/logs", setup=_folder("logs")),
    Case("doctor-log-with-check", ("doctor", "--log", "{tmp}/t.log", "--check", "npu"), 2, "--log reads a log and runs no check",
         setup=_file("t.log")),
    Case("doctor-bad-spec", ("doctor", "--root", "{root}", "--spec", "{spec}", "--check", "system"), 2,
         "repos.megatron.commit", spec=HEAD + "repos: {megatron: {commit: abc}}\n"),
    Case("doctor-no-spec", ("doctor", "--spec", "no-such-spec"), 2, "no spec named 'no-such-spec'"),
    # smoke
    Case("smoke-devices-zero", ("smoke", "--root", "{root}", "--devices", "0"), 2, "--devices 0: expected at least 1"),
    Case("smoke-devices-word", ("smoke", "--root", "{root}", "--devices", "all"), 2, "--devices all: expected a whole number"),
    Case("smoke-root-missing", ("smoke", "--root", "{tmp}/nowhere"), 2, "--root {tmp}/nowhere: no such folder"),
    Case("smoke-no-target-env", ("smoke", "--root", "{root}"), 1, "no target env at {root}/MindSpeed-MM", setup=_folder("ws")),
    Case("smoke-bad-spec", ("smoke", "--root", "{root}", "--spec", "{spec}"), 2, "bad.yaml:2:1: did not find expected node content", spec="name: [\n",
         setup=_folder("ws")),
    # kill-npu
    Case("kill-npu-grace-word", ("kill-npu", "--all", "--dry-run", "--grace", "soon"), 2, "--grace soon"),
    Case("kill-npu-grace-negative", ("kill-npu", "--all", "--dry-run", "--grace", "-3"), 2, "--grace -3"),
    Case("kill-npu-device-word", ("kill-npu", "--all", "--dry-run", "--device", "first"), 2, "got 'first'"),
    Case("kill-npu-user-and-all", ("kill-npu", "--all", "--user", "alice", "--dry-run"), 2, "--all"),
    Case("kill-npu-nobody", ("kill-npu", "--dry-run"), 2, "NPUENV_USER"),
    Case("kill-npu-smi-missing", ("kill-npu", "--all", "--dry-run"), 1, "{tmp}/no-npu-smi",
         env={"NPUENV_NPU_SMI": "{tmp}/no-npu-smi"}),
    # wheels
    Case("wheels-on-a-file", ("wheels", "--wheels", "{tmp}/w"), 2, "--wheels {tmp}/w: is not a folder", setup=_file("w")),
    Case("wheels-missing", ("wheels", "--wheels", "{tmp}/none"), 2, "--wheels {tmp}/none: does not exist"),
    Case("wheels-bad-spec", ("wheels", "--wheels", "{tmp}/wh", "--spec", "{tmp}/bad.yaml"), 2, "bad.yaml:2:1: did not find",
         setup=_both(_folder("wh"), _file("bad.yaml", "name: [\n"))),
    # user.*
    Case("user-add-empty-name", ("user.add", "", "--root", "{tmp}/people"), 2, "user name '' is not allowed (it is empty",
         setup=_folder("people")),
    Case("user-add-digit", ("user.add", "1abc", "--root", "{tmp}/people"), 2, "it starts with '1', not a letter",
         setup=_folder("people")),
    Case("user-add-reserved", ("user.add", "root", "--root", "{tmp}/people"), 2, "user name 'root' is reserved",
         setup=_folder("people")),
    Case("user-add-space", ("user.add", "a b", "--root", "{tmp}/people"), 2, "it has a space", setup=_folder("people")),
    Case("user-add-line-break", ("user.add", "bob\nx", "--root", "{tmp}/people"), 2, "it has a control character",
         setup=_folder("people")),
    Case("user-add-path", ("user.add", "../x", "--root", "{tmp}/people"), 2, "not a path", setup=_folder("people")),
    Case("user-add-capitals", ("user.add", "Alice", "--root", "{tmp}/people"), 2, "capital letters", setup=_folder("people")),
    Case("user-add-too-long", ("user.add", "a" * 40, "--root", "{tmp}/people"), 2, "longer than 32 characters",
         setup=_folder("people")),
    Case("user-add-option-as-name", ("user.add", "--name", "-x", "--root", "{tmp}/people"), 2, "starts with '-'",
         setup=_folder("people")),
    Case("user-add-root-missing", ("user.add", "alice", "--root", "{tmp}/none"), 2, "--root {tmp}/none: does not exist"),
    Case("user-add-root-file", ("user.add", "alice", "--root", "{tmp}/f"), 2, "--root {tmp}/f: is not a folder",
         setup=_file("f")),
    Case("user-add-root-colon", ("user.add", "alice", "--root", "{tmp}/a:b"), 2, "':' or a line break", setup=_folder("a:b")),
    Case("user-add-shell", ("user.add", "alice", "--root", "{tmp}/people", "--shell", "fish"), 2, "--shell fish",
         setup=_folder("people")),
    Case("user-add-ca-missing", ("user.add", "alice", "--root", "{tmp}/people", "--ca-bundle", "{tmp}/ca.pem"), 1,
         "CA bundle {tmp}/ca.pem (from --ca-bundle) does not exist", setup=_folder("people")),
    Case("user-add-symlinked-home", ("user.add", "alice", "--root", "{tmp}/people"), 1,
         "{tmp}/people/alice is a symlink", setup=_link("people/alice", "elsewhere")),
    Case("user-add-home-is-a-file", ("user.add", "alice", "--root", "{tmp}/people"), 1,
         "{tmp}/people/alice exists and is not a folder", setup=_file("people/alice")),
    Case("user-add-foreign-init", ("user.add", "alice", "--root", "{tmp}/people"), 1, "init.sh",
         setup=_file("people/alice/init.sh", "#!/bin/sh\necho mine\n")),
    Case("user-show-unknown", ("user.show", "nobody", "--root", "{tmp}/people"), 1, "no user 'nobody'", setup=_folder("people")),
    Case("user-show-port", ("user.show", "alice", "--root", "{tmp}/people", "--port", "ssh"), 2, "--port ssh",
         setup=_person("alice")),
    Case("user-show-port-range", ("user.show", "alice", "--root", "{tmp}/people", "--port", "70000"), 2,
         "--port 70000: a TCP port is at most 65535", setup=_person("alice")),
    Case("user-show-host-space", ("user.show", "alice", "--root", "{tmp}/people", "--host", "my box"), 2,
         "--host 'my box'", setup=_person("alice")),
    Case("user-vscode-outside", ("user.vscode", "alice", "--root", "{tmp}/people", "--project", "{tmp}/shared"), 2,
         "--project {tmp}/shared", setup=_both(_person("alice"), _folder("shared"))),
    Case("user-vscode-bad-json", ("user.vscode", "alice", "--root", "{tmp}/people", "--project", "{tmp}/people/alice/p"), 1,
         "settings.json:2:", setup=_both(_person("alice"), _file("people/alice/p/.vscode/settings.json", "{\n  oops\n}\n"))),
    Case("user-vscode-unknown", ("user.vscode", "zed", "--root", "{tmp}/people", "--project", "{tmp}/people"), 1,
         "no user 'zed'", setup=_folder("people")),
    Case("user-check-unknown", ("user.check", "zed", "--root", "{tmp}/people"), 1, "no user 'zed'", setup=_folder("people")),
    Case("user-check-persistent-missing", ("user.check", "alice", "--root", "{tmp}/people", "--persistent", "{tmp}/none"), 2,
         "--persistent {tmp}/none", setup=_person("alice")),
    Case("user-list-root-missing", ("user.list", "--root", "{tmp}/none"), 2, "--root {tmp}/none: does not exist"),
    Case("unknown-task", ("bootsrap",), 1, "No idea what 'bootsrap' is"),
]


# --- running a case -------------------------------------------------------------------------------------


def npuenv(*argv: str) -> list:
    return [sys.executable, "-m", "invoke", "--search-root", str(REPO), *argv]


def sandbox_env(tmp: Path) -> Dict[str, str]:
    env = {k: v for k, v in clean_env().items()
           if not k.startswith(("NPUENV_", "UV_", "GIT_CONFIG", "VIRTUAL_ENV", "PYTHONHTTPSVERIFY"))}
    env.update(HOME=str(tmp / "home"), TMPDIR=str(tmp / "tmpdir"), NPUENV_PERSISTENT_ROOT=str(tmp / "no-persistent"),
               NPUENV_DEVICE_GLOB=str(tmp / "no-davinci*"))
    return env


def snapshot(folder: Path, skip: Path) -> Dict[str, tuple]:
    found = {}
    for path in sorted(folder.rglob("*")):
        if path == skip or skip in path.parents:
            continue
        stat = path.lstat()
        found[str(path.relative_to(folder))] = (stat.st_mode, stat.st_size, stat.st_mtime_ns)
    return found


def fill(text: str, tmp: Path) -> str:
    return text.replace("{root}", str(tmp / "ws")).replace("{tmp}", str(tmp)).replace("{spec}", str(tmp / "bad.yaml"))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path) -> None:
    for folder in ("home", "tmpdir"):
        (tmp_path / folder).mkdir()
    env = sandbox_env(tmp_path)
    env.update({k: fill(v, tmp_path) for k, v in case.env.items()})
    if case.spec is not None:
        (tmp_path / "bad.yaml").write_text(case.spec)
    if case.setup is not None:
        case.setup(tmp_path)
    if any("{root}" in a for a in case.argv) and case.setup is None and case.id.startswith("bootstrap"):
        pass  # the root is made by bootstrap itself where that is its job
    root = tmp_path / "ws"
    wheels_before = sorted(p.name for p in (REPO / "wheels").iterdir())
    before = snapshot(tmp_path, root)
    proc = subprocess.run(npuenv(*[fill(a, tmp_path) for a in case.argv]), cwd=tmp_path, env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    everything = proc.stdout + proc.stderr
    assert proc.returncode == case.code, everything
    assert fill(case.says, tmp_path) in proc.stderr, everything
    assert "Traceback" not in everything and "npuenv crashed" not in everything
    assert snapshot(tmp_path, root) == before, "something was written outside the root"
    assert sorted(p.name for p in (REPO / "wheels").iterdir()) == wheels_before


def test_the_table_is_large_and_covers_every_task() -> None:
    assert len(CASES) >= 100
    tasks = {case.argv[0] for case in CASES}
    assert {"bootstrap", "doctor", "smoke", "kill-npu", "wheels", "user.add", "user.show", "user.vscode",
            "user.check", "user.list"} <= tasks
