"""The spec format: the default spec's pins, extends/merge, every validation problem with file:line key."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from npuenv.errors import SpecError
from npuenv.spec import Spec, builtin_spec_dir, load_spec
from npuenv.steps.wheel import WheelFile

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _from_the_checkout(monkeypatch):
    """Messages show paths relative to the current folder when below it: run from the checkout."""
    monkeypatch.chdir(REPO)

DEFAULT = "mindspeed-mm-internvl2.5"
COMMIT_A = "a" * 40
SHA = "0123456789abcdef" * 4
ROOT = Path(__file__).resolve().parents[1]
PATCH = ROOT / "patches" / "mindspeed-setup-no-pip.patch"
PIP_LINES = [
    "if os.getenv('CI_BUILD', '0') != '1':",
    "    subprocess.check_call([sys.executable, '-m', 'pip', 'install', '-r', 'requirements.txt'])",
]


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems_of(path: Path, **kwargs) -> list:
    with pytest.raises(SpecError) as info:
        load_spec(path, **kwargs)
    return info.value.problems


# --- the default spec -----------------------------------------------------------------------------------


def test_builtin_dir_holds_the_default_spec():
    assert builtin_spec_dir() == ROOT / "env_specs"
    assert (builtin_spec_dir() / f"{DEFAULT}.yaml").is_file()


def test_default_spec_has_every_pin():
    spec = load_spec(DEFAULT)
    assert isinstance(spec, Spec)
    assert spec.name == DEFAULT
    assert spec.file == ROOT / "env_specs" / f"{DEFAULT}.yaml"
    assert spec.python == "3.10"
    assert spec.index == "https://pypi.org/simple"
    assert spec.mirrors == ()
    pins = {name: (r.url, r.commit, r.path, r.ref, r.submodules) for name, r in spec.repos.items()}
    assert pins == {
        "mindspeed-mm": ("https://gitee.com/ascend/MindSpeed-MM.git", "0b9ca0a6a2c7ef8cbe38aea762cd68e99b4938fe",
                         "MindSpeed-MM", "master", False),
        "megatron": ("https://github.com/NVIDIA/Megatron-LM.git", "baf94af3c667248865f23df73b9fb8e2395e6fd0",
                     "Megatron-LM", "core_r0.8.0", False),
        "mindspeed": ("https://gitee.com/ascend/MindSpeed.git", "3f09d6736571cf1e30f8ac97de77982d0ab32cc5",
                      "MindSpeed-MM/MindSpeed", "core_r0.8.0", False),
        "apex": ("https://gitee.com/ascend/apex.git", "49a7994e13cc70d155adbd7b25b7a6b86e38e58e", "apex",
                 "master", False),
        "decord": ("https://github.com/dmlc/decord.git", "6a3617cef035535193f390f86399dde139fa2a53", "decord",
                   "v0.6.0", True),
    }
    copy = spec.copies["megatron"]
    assert (copy.repo, copy.path, copy.to) == ("megatron", "megatron", "MindSpeed-MM/megatron")
    patch = spec.patches["mindspeed-setup-no-pip"]
    assert (patch.repo, patch.file) == ("mindspeed", PATCH)
    overlay = spec.overlays["dot-product-attention"]
    assert (overlay.from_repo, overlay.from_path, overlay.to_repo, overlay.to_path) == (
        "mindspeed-mm", "examples/internvl2.5/dot_product_attention.py",
        "mindspeed", "mindspeed/core/transformer/dot_product_attention.py")


def test_default_spec_builds():
    spec = load_spec(DEFAULT)
    apex, decord = spec.builds["apex"], spec.builds["decord"]
    assert (apex.repo, apex.strategy, apex.commands) == ("apex", "source",
                                                         (("bash", "scripts/build.sh", "--python={python_version}"),))
    assert apex.clean == ("apex",) and apex.wheels == "apex/dist/*.whl" and apex.key == ("torch",)
    assert apex.packages == ("torch", "setuptools<=65.7.0")
    # apex's build writes the invalid version 0.1-ascend: the spec names the valid one Ascend's README promises
    assert apex.version == "0.1+ascend"
    # `import apex` imports torch_npu, which needs CANN: only `import apex_C` is checked everywhere
    assert apex.check.strip() == "import torch, apex_C" and apex.cann_check.strip() == "import apex"
    # decord is built from source, as the team did; the decord2 wheel is an opt-in
    assert decord.strategy == "source" and decord.glibc == "2.28" and decord.key == ("pkgconfig:libavcodec",)
    assert ("cmake", "-S", ".", "-B", "build", "-DUSE_CUDA=0", "-DCMAKE_BUILD_TYPE=Release") in decord.commands
    files = decord.prebuilt.files
    assert (decord.prebuilt.package, decord.prebuilt.version) == ("decord2", "3.4.0")
    assert files["aarch64"].sha256 == "dbf926aa5a2e93a8fb1f2a70fde649aa64a9313a471963fec16ef57c4970213f"
    assert files["x86_64"].sha256 == "842166f9f99b146cd4e90a22eeb566c4c11e4f9929199aafc877794edd648186"
    patch = spec.patches["decord-ffmpeg5"]
    assert (patch.repo, patch.when.pkgconfig, patch.when.version) == ("decord", "libavcodec", ">=59,<61")


def test_default_spec_takes_torch_from_the_cpu_index_on_x86_64_only():
    spec = load_spec(DEFAULT)
    assert spec.indexes == {"pytorch-cpu": "https://download.pytorch.org/whl/cpu"}
    assert [(s.package, s.index, s.arch) for s in spec.env.sources] == [("torch", "pytorch-cpu", ("x86_64",))]


@pytest.mark.parametrize("text, line, problem", [
    ("builds: {x: {package: x, commands: [[make]], wheels: '*.whl'}}\n", 4,
     "builds.x.repo: missing (required with strategy 'source')"),
    ("builds: {x: {package: x, strategy: wheel}}\n", 4, "builds.x.prebuilt: missing (required with strategy 'wheel')"),
    ("builds: {x: {package: x, repo: r, commands: ['make all'], wheels: '*.whl'}}\n", 4,
     "builds.x.commands[0]: give the command as a list of arguments"),
    ("builds: {x: {package: x, repo: r, commands: [[make]], wheels: '*.whl', strategy: fast}}\n", 4,
     "builds.x.strategy: expected one of 'source', 'wheel', 'auto', got 'fast'"),
    ("builds: {x: {package: x, repo: r, commands: [[make]], wheels: '*.whl', key: ['pkgconfig:']}}\n", 4,
     "builds.x.key[0]: 'pkgconfig:': name a target-env package"),
    ("patches: {p: {repo: r, file: x.patch, when: {pkgconfig: libavcodec, version: 'new'}}}\n", 4,
     "patches.p.when.version: 'new' is not a version condition"),
    ("builds: {x: {package: x, repo: r, commands: [[make]], wheels: '*.whl', version: 0.1-ascend}}\n", 4,
     "builds.x.version: '0.1-ascend' is not a valid version (PEP 440)"),
    ("builds: {x: {package: x, repo: r, commands: [[make]], wheels: '*.whl', cann_check: [import x]}}\n", 4,
     "builds.x.cann_check: expected a string, got a list"),
    ("indexes: {cpu: http://download.pytorch.org/whl/cpu}\n", 4, "indexes.cpu: http:// is refused"),
    ("env: {venv: v, sources: {torch: {index: gpu}}}\n", 4, "env.sources.torch.index: no index named 'gpu'"),
    ("indexes: {cpu: https://x.org/cpu}\nenv: {venv: v, sources: {torch: {index: cpu, arch: arm64}}}\n", 5,
     "env.sources.torch.arch: unknown architecture 'arm64'"),
    ("indexes: {cpu: https://x.org/cpu}\nenv: {venv: v, sources: {torch: {index: cpu, arch: [x86_64, ppc]}}}\n", 5,
     "env.sources.torch.arch[1]: unknown architecture 'ppc'"),
    ("mirrors: {'https://github.com/': 'http://mirror/'}\n", 4, 'mirrors["https://github.com/"]: http:// is refused'),
    ("mirrors: {'https://github.com/': 'git/mirror/'}\n", 4,
     "mirrors[\"https://github.com/\"]: 'git/mirror/' is not an https:// URL, a file:// URL or an absolute path"),
])
def test_build_section_problems(tmp_path, text, line, problem):
    (tmp_path / "x.patch").write_text("--- a/f\n+++ b/f\n")
    head = "name: t\npython: '3.10'\nindex: https://pypi.org/simple\n"
    repos = "repos: {r: {url: https://example.org/r.git, commit: '" + "a" * 40 + "', path: r}}\n"
    path = write(tmp_path, "t.yaml", head + text + repos)
    found = problems_of(path)
    assert any(p.startswith(f"{path}:{line} {problem}") for p in found), found


def test_sources_and_local_mirrors_in_a_spec(tmp_path):
    head = "name: t\npython: '3.10'\nindex: https://pypi.org/simple\n"
    text = head + ("indexes: {cpu: https://x.org/cpu, other: https://y.org/simple}\n"
                   "mirrors: {'https://github.com/': /srv/git/github.com/, 'https://gitee.com/': 'file:///srv/gitee/'}\n"
                   "env: {venv: v, sources: {torch: {index: cpu, arch: x86_64}, numpy: {index: other}}}\n")
    spec = load_spec(write(tmp_path, "t.yaml", text))
    assert [(s.package, s.index, s.arch) for s in spec.env.sources] == [("torch", "cpu", ("x86_64",)),
                                                                        ("numpy", "other", ())]
    assert spec.mirrors == (("https://github.com/", "file:///srv/git/github.com/"),
                            ("https://gitee.com/", "file:///srv/gitee/"))


def test_default_spec_torch_npu_wheel():
    wheel = load_spec(DEFAULT).wheels["torch_npu"]
    assert (wheel.package, wheel.version, wheel.source) == ("torch-npu", "2.1.0.post8", "index")
    arm, x86 = wheel.files["aarch64"], wheel.files["x86_64"]
    assert arm.filename == "torch_npu-2.1.0.post8-cp310-cp310-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"
    assert arm.sha256 == "94faed51261ed67e01f5166fea18aecaeb2b81f4272739abaf86d2adda06218f"
    assert arm.url == ("https://gitee.com/ascend/pytorch/releases/download/v6.0.rc3-pytorch2.1.0/"
                       + arm.filename)
    assert x86.filename == "torch_npu-2.1.0.post8-cp310-cp310-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    assert x86.sha256 == "904459907a3e649df99723076808033171501493c5f6210e8f209296731ba835"
    assert x86.url is None


def test_default_spec_env_and_dirs():
    spec = load_spec(DEFAULT)
    env = spec.env
    assert env.venv == "MindSpeed-MM/.venv"
    assert env.project == "mindspeed-mm"
    assert env.editable == ("mindspeed",)
    assert env.requirements == (("mindspeed", "requirements.txt"),)
    assert env.packages == ("torch==2.1.0", "decorator", "pyyaml", "wheel", "setuptools<=65.7.0")
    assert env.wheels == ("torch_npu",)
    assert spec.dirs == ("MindSpeed-MM/logs", "MindSpeed-MM/dataset", "MindSpeed-MM/ckpt")


def test_raw_is_json_and_fragments_are_copies():
    spec = load_spec(DEFAULT)
    assert json.loads(json.dumps(spec.raw)) == spec.raw
    assert "extends" not in spec.raw
    fragment = spec.fragment("repos", "mindspeed")
    assert fragment["commit"] == "3f09d6736571cf1e30f8ac97de77982d0ab32cc5"
    fragment["commit"] = "changed"
    assert spec.fragment("repos", "mindspeed")["commit"] != "changed"
    assert spec.fragment("env")["venv"] == "MindSpeed-MM/.venv"
    assert spec.fragment("dirs") == {"dirs": list(spec.dirs)}
    assert spec.fragment("mirrors") == {}
    with pytest.raises(KeyError):
        spec.fragment("repos", "nope")


def test_dict_order_is_kept():
    spec = load_spec(DEFAULT)
    assert list(spec.repos) == ["mindspeed-mm", "megatron", "mindspeed", "apex", "decord"]
    assert list(spec.wheels["torch_npu"].files) == ["aarch64", "x86_64"]


# --- extends ----------------------------------------------------------------------------------------------


def test_extends_overrides_one_repo_and_keeps_the_rest(tmp_path):
    fork = "b" * 40
    path = write(tmp_path, "mine.yaml", f"""
        extends: {DEFAULT}
        repos:
          mindspeed-mm:
            url: https://gitee.com/me/MindSpeed-MM.git
            commit: {fork}
        """)
    spec, default = load_spec(path), load_spec(DEFAULT)
    mm = spec.repos["mindspeed-mm"]
    assert (mm.url, mm.commit, mm.path, mm.ref) == ("https://gitee.com/me/MindSpeed-MM.git", fork,
                                                     "MindSpeed-MM", "master")
    assert spec.repos["mindspeed"] == default.repos["mindspeed"]
    assert spec.repos["megatron"] == default.repos["megatron"]
    assert (spec.wheels, spec.env, spec.patches, spec.name) == (default.wheels, default.env, default.patches,
                                                               default.name)
    assert spec.file == path.resolve()
    assert spec.raw["repos"]["mindspeed-mm"]["commit"] == fork


def test_null_removes_and_lists_replace(tmp_path):
    path = write(tmp_path, "mine.yaml", f"""
        extends: {DEFAULT}
        name: lean
        repos: {{megatron: null}}
        copies: null
        overlays: {{dot-product-attention: null}}
        env: {{packages: [decorator], requirements: null}}
        dirs: [logs]
        """)
    spec = load_spec(path)
    assert spec.name == "lean"
    assert list(spec.repos) == ["mindspeed-mm", "mindspeed", "apex", "decord"]
    assert spec.copies == {} and spec.overlays == {}
    assert spec.env.packages == ("decorator",)
    assert spec.env.requirements == ()
    assert spec.env.editable == ("mindspeed",)
    assert spec.dirs == ("logs",)
    assert "megatron" not in spec.raw["repos"] and "copies" not in spec.raw


def test_extends_by_path_and_chain(tmp_path):
    write(tmp_path, "base/one.yaml", f"""
        name: one
        python: "3.10"
        repos:
          a: {{url: "https://example.org/a.git", commit: {COMMIT_A}, path: a}}
        """)
    write(tmp_path, "base/two.yaml", """
        extends: one
        repos:
          b: {url: "https://example.org/b.git", commit: %s, path: b}
        """ % ("b" * 40))
    path = write(tmp_path, "three.yaml", "extends: base/two.yaml\nname: three\n")
    spec = load_spec(path, spec_dir=tmp_path / "nowhere")
    assert spec.name == "three"
    assert list(spec.repos) == ["a", "b"]


def test_patch_file_is_relative_to_the_file_that_gave_it(tmp_path):
    write(tmp_path, "base/fix.patch", "--- a/x\n+++ b/x\n")
    write(tmp_path, "base/base.yaml", f"""
        name: base
        python: "3.10"
        repos:
          a: {{url: "https://example.org/a.git", commit: {COMMIT_A}, path: a}}
        patches:
          fix: {{repo: a, file: fix.patch}}
        """)
    path = write(tmp_path, "user/mine.yaml", "extends: ../base/base.yaml\n")
    assert load_spec(path).patches["fix"].file == (tmp_path / "base" / "fix.patch").resolve()


def test_problems_name_the_file_that_gave_the_value(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "base.yaml", """
        name: base
        python: "3.10"
        repos:
          a:
            url: https://example.org/a.git
            commit: not-a-commit
            path: a
        """)
    write(tmp_path, "mine.yaml", """
        extends: base
        repos:
          a:
            path: /abs
        """)
    problems = problems_of(Path("mine.yaml"))
    assert len(problems) == 2
    assert problems[0].startswith("base.yaml:6 repos.a.commit: expected a full commit id")
    assert problems[1].startswith("mine.yaml:4 repos.a.path: '/abs' is absolute")


def test_extends_cycle(tmp_path):
    write(tmp_path, "a.yaml", "extends: b\nname: a\n")
    write(tmp_path, "b.yaml", "name: b\nextends: a.yaml\n")
    problems = problems_of(tmp_path / "a.yaml")
    assert len(problems) == 1
    assert problems[0].startswith(f"{(tmp_path / 'b.yaml')}:2 extends: cycle: ")
    assert "a.yaml -> " in problems[0] and problems[0].endswith("a.yaml")


def test_extends_missing_base_names_the_line(tmp_path):
    path = write(tmp_path, "mine.yaml", "name: x\nextends: nope\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert info.value.problems[0].startswith(f"{path}:2 extends: no spec 'nope'")
    assert DEFAULT in info.value.hint


@pytest.mark.parametrize("ref", ["does-not-exist", "missing/spec.yaml"])
def test_missing_spec_lists_available_specs(ref, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError) as info:
        load_spec(ref)
    assert "does-not-exist" in info.value.problems[0] or "missing/spec.yaml" in info.value.problems[0]
    assert DEFAULT in info.value.hint
    assert str(builtin_spec_dir()) in info.value.hint or "env_specs" in info.value.hint


def test_missing_spec_in_custom_spec_dir(tmp_path):
    write(tmp_path, "alpha.yaml", "name: alpha\n")
    write(tmp_path, "beta.yaml", "name: beta\n")
    with pytest.raises(SpecError) as info:
        load_spec("gamma", spec_dir=tmp_path)
    assert "alpha, beta" in info.value.hint


# --- validation: one problem each, at an exact line -------------------------------------------------------

GOOD = f"""\
name: t
python: "3.10"
index: https://pypi.org/simple
repos:
  a:
    url: https://example.org/a.git
    commit: {COMMIT_A}
    path: a
"""

WHEEL = f"""\
wheels:
  w:
    package: torch-npu
    version: "2.1.0"
    source: index
    files:
      aarch64:
        filename: torch_npu-2.1.0-cp310-cp310-linux_aarch64.whl
        sha256: {SHA}
"""

# (id, spec text, expected start "line key.path: message", a further fragment)
CASES = [
    ("python-float", GOOD.replace('"3.10"', "3.10"), '2 python: YAML reads 3.10 as the number 3.1: '
                                                     'write "3.10" in quotes', ""),
    ("python-int", GOOD.replace('"3.10"', "3"), '2 python: YAML reads 3 as the number 3', ""),
    ("wheel-version-float", GOOD + WHEEL.replace('"2.1.0"', "2.10"),
     '12 wheels.w.version: YAML reads 2.10 as the number 2.1: write "2.10" in quotes', ""),
    ("unknown-key", GOOD + "    submodule: true\n", "9 repos.a.submodule: unknown key 'submodule'",
     "did you mean 'submodules'"),
    ("missing-required", GOOD.replace(f"    commit: {COMMIT_A}\n", ""), "5 repos.a.commit: missing", ""),
    ("missing-name", GOOD.replace("name: t\n", ""), "1 name: missing (required)", ""),
    ("missing-index", GOOD.replace("index: https://pypi.org/simple\n", "") + "env: {venv: v}\n",
     "1 index: missing (required)", ""),
    ("wrong-type", GOOD.replace("path: a", "path: [a, b]"), "8 repos.a.path: expected a string, got a list", ""),
    ("string-not-mapping", GOOD + "env: .venv\n", "9 env: expected a mapping, got a string", ""),
    ("bool-type", GOOD + "    submodules: 'yes'\n", "9 repos.a.submodules: expected true or false", ""),
    ("commit-short", GOOD.replace(COMMIT_A, "abc123"), "7 repos.a.commit: expected a full commit id, 40 "
                                                       "lowercase hex digits, got 'abc123'", ""),
    ("commit-upper", GOOD.replace(COMMIT_A, "A" * 40), "7 repos.a.commit: expected a full commit id", ""),
    ("sha256", GOOD + WHEEL.replace(SHA, "abc"), "17 wheels.w.files.aarch64.sha256: expected a sha256: 64 hex",
     ""),
    ("http-url", GOOD.replace("https://example.org", "http://example.org"), "6 repos.a.url: http:// is refused",
     "TLS"),
    ("ssh-url", GOOD.replace("https://example.org/a.git", "git@example.org:a.git"),
     "6 repos.a.url: expected an https:// URL", ""),
    ("http-index", GOOD.replace("https://pypi", "http://pypi"), "3 index: http:// is refused", ""),
    ("http-mirror", GOOD + 'mirrors:\n  "https://github.com/": "http://mirror.example/gh/"\n',
     '10 mirrors["https://github.com/"]: http:// is refused', ""),
    ("http-mirror-prefix", GOOD + 'mirrors:\n  "http://github.com/": "https://mirror.example/gh/"\n',
     '10 mirrors["http://github.com/"]: http:// is refused', ""),
    ("verify-false", GOOD + "    verify: false\n", "9 repos.a.verify: npuenv never turns off TLS verification",
     "--ca-bundle"),
    ("ssl-verify-top", GOOD + "ssl_verify: false\n", "9 ssl_verify: npuenv never turns off TLS", "--ca-bundle"),
    ("insecure-deep", GOOD + WHEEL + "        insecure: true\n",
     "18 wheels.w.files.aarch64.insecure: npuenv never turns off TLS", ""),
    ("bad-repo-name", GOOD.replace("  a:", "  My_Repo:").replace("path: a", "path: m"),
     "5 repos.My_Repo: the name 'My_Repo' must match", ""),
    ("bad-wheel-name", GOOD + WHEEL.replace("  w:", "  -w:"), "10 wheels.-w: the name '-w' must match", ""),
    ("absolute-path", GOOD.replace("path: a", "path: /opt/a"), "8 repos.a.path: '/opt/a' is absolute", ""),
    ("dotdot-path", GOOD.replace("path: a", "path: a/../../b"), "8 repos.a.path: 'a/../../b' contains '..'",
     "never writes outside"),
    ("unnormalized-path", GOOD.replace("path: a", "path: a/./b/"), "8 repos.a.path: 'a/./b/' is not normalized",
     "write 'a/b'"),
    ("dot-path", GOOD + "dirs: [logs, .]\n", "9 dirs[1]: '.' names the workspace root itself", ""),
    ("patch-unknown-repo", GOOD + "patches:\n  p:\n    repo: foo\n    file: spec.yaml\n",
     "11 patches.p.repo: no repo named 'foo'; repos are: a", ""),
    ("patch-file-missing", GOOD + "patches:\n  p: {repo: a, file: nope.patch}\n",
     "10 patches.p.file: no such patch file", "nope.patch"),
    ("copy-unknown-repo", GOOD + "copies:\n  c: {repo: b, path: x, to: y}\n",
     "10 copies.c.repo: no repo named 'b'", ""),
    ("overlay-unknown-repo", GOOD + "overlays:\n  o:\n    from: {repo: a, path: f.py}\n    to: {repo: z, path: f.py}\n",
     "12 overlays.o.to.repo: no repo named 'z'", ""),
    ("env-unknown-wheel", GOOD + "env:\n  venv: .venv\n  wheels: [torch_npu]\n",
     "11 env.wheels[0]: no wheel named 'torch_npu'", ""),
    ("env-unknown-editable", GOOD + "env:\n  venv: .venv\n  editable:\n    - a\n    - b\n",
     "13 env.editable[1]: no repo named 'b'; repos are: a", ""),
    ("source-url-without-url", GOOD + WHEEL.replace("source: index", "source: url"),
     "15 wheels.w.files.aarch64: source is 'url' but this file has no url", ""),
    ("source-bad", GOOD + WHEEL.replace("source: index", "source: ftp"), "13 wheels.w.source: expected one of", ""),
    ("wheel-file-no-name", GOOD + WHEEL.replace(
        "        filename: torch_npu-2.1.0-cp310-cp310-linux_aarch64.whl\n", ""),
     "15 wheels.w.files.aarch64.filename: missing (required when the file has no url)", ""),
    ("wheel-file-wrong-arch", GOOD + WHEEL.replace("linux_aarch64", "linux_x86_64"),
     "16 wheels.w.files.aarch64.filename: 'torch_npu-2.1.0-cp310-cp310-linux_x86_64.whl' is not a wheel for "
     "aarch64", ""),
    ("wheel-file-wrong-version", GOOD + WHEEL.replace('"2.1.0"', '"2.1.0.post8"'),
     "16 wheels.w.files.aarch64.filename:", "is version 2.1.0, not 2.1.0.post8"),
    ("unknown-arch", GOOD + WHEEL.replace("      aarch64:", "      arm64:"),
     "15 wheels.w.files.arm64: unknown architecture 'arm64'", ""),
    ("pep508", GOOD + "env:\n  venv: .venv\n  packages: [torch==2.1.0, 'torch >>= 2']\n",
     "11 env.packages[1]: not a valid requirement (PEP 508)", ""),
    ("duplicate-key", GOOD + "    path: b\n", "9 repos.a.path: duplicate key 'path' (first given on line 8)", ""),
    ("duplicate-repo-path", GOOD + f"  b:\n    url: https://example.org/b.git\n    commit: {COMMIT_A}\n"
                                   "    path: a\n",
     "12 repos.b.path: 'a' is also the path of repo 'a'", ":8)"),
    ("unknown-top-key", GOOD + "repo: {}\n", "9 repo: unknown key 'repo': did you mean 'repos'?", ""),
    ("empty-wheel-files", GOOD + WHEEL.split("      aarch64:")[0].replace("files:", "files: {}"),
     "14 wheels.w.files: give at least one file", ""),
    ("non-string-key", GOOD + "mirrors:\n  on: https://x.example/\n", "10 mirrors: YAML reads the key on as True",
     ""),
]


@pytest.mark.parametrize("text,expected,fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_one_problem_at_its_line(tmp_path, text, expected, fragment):
    path = write(tmp_path, "spec.yaml", text)
    problems = problems_of(path)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{path}:{expected}"), problems[0]
    assert fragment in problems[0]


def test_good_minimal_spec_loads(tmp_path):
    spec = load_spec(write(tmp_path, "spec.yaml", GOOD + WHEEL))
    assert spec.env is None and spec.copies == {} and spec.mirrors == () and spec.description == ""
    assert spec.wheels["w"].files["aarch64"].url is None


def test_filename_defaults_to_the_url_basename_and_mirrors_keep_order(tmp_path):
    url = "https://example.org/dl/torch_npu-2.1.0-cp310-cp310-linux_aarch64.whl"
    wheel = WHEEL.replace("        filename: torch_npu-2.1.0-cp310-cp310-linux_aarch64.whl\n",
                          f"        url: {url}\n").replace("source: index", "source: url")
    mirrors = 'mirrors:\n  "https://b.example/": "https://m.example/b/"\n  "https://a.example/": "https://m.example/a/"\n'
    spec = load_spec(write(tmp_path, "spec.yaml", GOOD + wheel + mirrors))
    assert spec.wheels["w"].files["aarch64"] == WheelFile("torch_npu-2.1.0-cp310-cp310-linux_aarch64.whl", SHA, url)
    assert spec.mirrors == (("https://b.example/", "https://m.example/b/"),
                            ("https://a.example/", "https://m.example/a/"))


def test_malformed_yaml_gives_line_and_column(tmp_path):
    path = write(tmp_path, "spec.yaml", "name: t\nrepos:\n  a: [1, 2\n  b: 3\n")
    problems = problems_of(path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:4:")


def test_top_level_must_be_a_mapping(tmp_path):
    problems = problems_of(write(tmp_path, "spec.yaml", "- a\n- b\n"))
    assert "expected a mapping of keys at the top level, got a list" in problems[0]


def test_several_problems_are_all_reported(tmp_path):
    path = write(tmp_path, "spec.yaml", """
        name: t
        python: 3.10
        index: http://pypi.org/simple
        repos:
          a:
            url: https://example.org/a.git
            commit: xyz
            path: ../a
            verify: false
        env:
          venv: .venv
          project: nope
          packages: ["==1"]
        """)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    lines = [p.split(" ", 1)[0] for p in info.value.problems]
    assert lines == [f"{path}:{n}" for n in (2, 3, 7, 8, 9, 12, 13)]
    assert "--ca-bundle" in info.value.hint
    assert str(info.value).startswith("7 problems in the spec:")


# --- the shipped patch ------------------------------------------------------------------------------------


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_setup_patch_applies_and_reverses_with_git(tmp_path):
    filler = [f"line_{n} = {n}" for n in range(1, 47)]
    tail = ["", "setuptools.setup(name='mindspeed')"]
    (tmp_path / "setup.py").write_text("\n".join(filler + PIP_LINES + tail) + "\n")
    assert _git(tmp_path, "init", "-q").returncode == 0
    check = _git(tmp_path, "apply", "--unidiff-zero", "--check", str(PATCH))
    assert check.returncode == 0, check.stderr
    assert _git(tmp_path, "apply", "--unidiff-zero", str(PATCH)).returncode == 0
    lines = (tmp_path / "setup.py").read_text().splitlines()
    assert lines[46:48] == ["# " + line for line in PIP_LINES]
    assert lines[:46] == filler and lines[48:] == tail
    reverse = _git(tmp_path, "apply", "--unidiff-zero", "--reverse", "--check", str(PATCH))
    assert reverse.returncode == 0, reverse.stderr


def test_patch_explains_itself_before_the_diff():
    text = PATCH.read_text()
    head = text.split("--- a/setup.py")[0]
    assert "uv" in head and "requirements.txt" in head
    assert "@@ -47,2 +47,2 @@" in text


def test_a_spec_that_passed_every_check_is_not_parsed_again_by_packaging(tmp_path):
    """What an up-to-date bootstrap saves: importing packaging and compiling its grammars. Any change to the
    content (a new digest) is checked in full again."""
    spec = load_spec(DEFAULT)
    again = load_spec(DEFAULT, checked=[spec.digest])
    assert again == spec and again.digest == spec.digest
    probe = ("import sys; from npuenv.spec import load_spec; "
             f"load_spec({DEFAULT!r}, checked=[{spec.digest!r}]); print('packaging.requirements' in sys.modules)")
    fresh = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert fresh.stdout.strip() == "False"
    bad = write(tmp_path, "bad.yaml", f"extends: {DEFAULT}\nenv: {{packages: ['torch>>2']}}\n")
    with pytest.raises(SpecError) as caught:
        load_spec(bad, checked=[spec.digest])
    assert any("env.packages[0]: not a valid requirement" in p for p in caught.value.problems)


def test_an_alias_bomb_is_refused_quickly_and_names_the_file(tmp_path):
    """Nested anchors: ten levels of ten aliases expand to 10^10 values from a file of 1 KB."""
    lines = ["name: bomb", "python: '3.10'", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    path = write(tmp_path, "bomb.yaml", "\n".join(lines) + "\n")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    [problem] = caught.value.problems
    assert problem.startswith(f"{path}:") and "expand to more than 100000 values" in problem


def test_a_huge_spec_file_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.yaml"
    with open(path, "w") as handle:
        handle.write("name: huge\npython: '3.10'\n# " + "x" * (2 << 20) + "\n")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert "a spec is at most 1048576 bytes" in caught.value.problems[0]
