"""The env step's pure parts: the project file it generates, and its check of the venv against uv.lock."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from npuenv.defaults import DEFAULT_SPEC
from npuenv.mirrors import Mirrors, combine
from npuenv.spec import load_spec
from npuenv.steps.env import EnvStep, installed_versions, lock_differences, locked_versions

# the shape uv 0.13 writes (trimmed from a real target env's uv.lock)
LOCK = '''version = 1
revision = 5
requires-python = "==3.10.*"

[[package]]
name = "mindspeed"
version = "0.8.0"
source = { editable = "../../MindSpeed-MM/MindSpeed" }

[[package]]
name = "npuenv-target-env"
version = "0"
source = { virtual = "." }
dependencies = [
    { name = "torch" },
]

[[package]]
name = "torch"
version = "2.1.0+cpu"
source = { registry = "https://download.pytorch.org/whl/cpu" }

[[package]]
name = "torch-npu"
version = "2.1.0.post8"
source = { path = "../../wheels/torch_npu-2.1.0.post8-cp310-cp310-manylinux_2_17_x86_64.whl" }

[[package]]
name = "PyYAML"
version = "6.0.2"
source = { registry = "https://pypi.org/simple" }
'''


class Ctx:
    """What EnvStep.pyproject reads from a step context."""

    def __init__(self, arch: str, mirrors: Mirrors = Mirrors()) -> None:
        self.arch, self.mirrors, self.lock = arch, mirrors, None
        self.wheels_dir, self.home = Path("/w/wheels"), Path("/r/.npuenv")

    def path(self, relative: str) -> Path:
        return Path("/r") / relative


PROJECT = Path("/r/.npuenv/target")


def step() -> EnvStep:
    spec = load_spec(DEFAULT_SPEC)  # without requirements files: nothing is on disk here
    return EnvStep(dataclasses.replace(spec, env=dataclasses.replace(spec.env, requirements=())))


def test_torch_comes_from_the_cpu_index_on_x86_64_only():
    for arch in ("x86_64", "aarch64"):
        text = step().pyproject(Ctx(arch), PROJECT)
        assert f"environments = [\"sys_platform == 'linux' and platform_machine == '{arch}'\"]" in text
        # one project file for both: the marker, not the file, decides where torch comes from
        assert '"torch" = [{ index = "pytorch-cpu", marker = "platform_machine == \'x86_64\'" }]' in text
        assert '[[tool.uv.index]]\nname = "pytorch-cpu"\nurl = "https://download.pytorch.org/whl/cpu"\nexplicit = true' \
            in text
        # the wheel is named inside the project, wherever the wheelhouse is
        assert (f'"torch-npu" = [{{ path = "wheels/torch_npu-2.1.0.post8-cp310-cp310-manylinux_2_17_{arch}.'
                f'manylinux2014_{arch}.whl", marker = "platform_machine == \'{arch}\'" }}]') in text
        assert '"mindspeed-mm" = { path = "../../MindSpeed-MM", editable = true }' in text


def test_a_lock_resolves_for_both_architectures_at_once():
    text = step().pyproject(Ctx("aarch64"), PROJECT, ("aarch64", "x86_64"))
    assert ("environments = [\"sys_platform == 'linux' and platform_machine == 'aarch64'\", "
            "\"sys_platform == 'linux' and platform_machine == 'x86_64'\"]") in text
    line = next(line for line in text.splitlines() if line.startswith('"torch-npu"'))
    assert line.count("path = ") == 2 and "manylinux2014_aarch64.whl\", marker = \"platform_machine == 'aarch64'" in line


def test_every_index_follows_the_mirrors():
    mirrors = combine([("https://download.pytorch.org/", "https://mirror.example/pytorch/"),
                       ("https://pypi.org/simple", "file:///srv/pypi/simple")])
    text = step().pyproject(Ctx("x86_64", mirrors), PROJECT)
    assert 'url = "https://mirror.example/pytorch/whl/cpu"' in text and 'url = "file:///srv/pypi/simple"' in text


def test_the_lock_is_read_without_uv():
    assert locked_versions(LOCK) == {"mindspeed": "0.8.0", "torch": "2.1.0+cpu", "torch-npu": "2.1.0.post8",
                                     "pyyaml": "6.0.2"}


def _venv(root: Path, dists: list) -> Path:
    site = root / "lib" / "python3.10" / "site-packages"
    site.mkdir(parents=True)
    for name in dists:
        (site / f"{name}.dist-info").mkdir()
    (site / "torch").mkdir()  # a package folder is not a distribution
    return root


def test_the_venv_is_compared_with_the_lock(tmp_path):
    locked = locked_versions(LOCK)
    venv = _venv(tmp_path / "ok", ["mindspeed-0.8.0", "torch-2.1.0+cpu", "torch_npu-2.1.0.post8", "PyYAML-6.0.2",
                                   "apex-0.1+ascend"])  # what builds install is not in the lock, and that is fine
    assert installed_versions(venv)["torch-npu"] == "2.1.0.post8"
    assert lock_differences(locked, installed_versions(venv)) == []
    drifted = _venv(tmp_path / "drifted", ["mindspeed-0.8.0", "torch-2.2.0", "PyYAML-6.0.2"])
    assert lock_differences(locked, installed_versions(drifted)) == ["torch 2.2.0, locked 2.1.0+cpu",
                                                                     "torch-npu missing"]


def test_a_failed_sync_gets_the_hint_for_its_cause():
    """Captured uv 0.13 outputs: an index that answers 503, a connection that breaks, a failed resolution."""
    from npuenv.steps.env import uv_failure_hint

    overloaded = ("error: Failed to fetch: `https://mirror.example/simple/numpy/`\n"
                  "  Caused by: HTTP status server error (503 Service Unavailable) for url "
                  "(https://mirror.example/simple/numpy/)\n")
    cut = ("error: Failed to download `torch==2.1.0`\n  Caused by: request or response body error\n"
           "  Caused by: error reading a body from connection\n  Caused by: connection closed before message completed\n")
    unsolvable = ("  x No solution found when resolving dependencies:\n"
                  "  `-> Because there is no version of torch==2.1.0+cpu and torch-npu==2.1.0.post8 depends on ...\n")
    assert "answered HTTP 503" in uv_failure_hint(overloaded) and "Run again later" in uv_failure_hint(overloaded)
    assert "broke or could not be made" in uv_failure_hint(cut) and "missing from the index" not in uv_failure_hint(cut)
    assert "missing from the index" in uv_failure_hint(unsolvable)
