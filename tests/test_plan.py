"""The spec compiled into steps: who depends on what (a step depends only on what it consumes)."""

from __future__ import annotations

import dataclasses

from npuenv.defaults import DEFAULT_SPEC
from npuenv.machine import Machine
from npuenv.plan import compile_steps, platform_problems
from npuenv.spec import load_spec


def deps(spec, arch="x86_64", glibc="2.36"):
    return {s.id: set(s.deps) for s in compile_steps(spec, Machine(arch, glibc))}


def test_the_target_env_depends_only_on_what_it_installs():
    found = deps(load_spec(DEFAULT_SPEC))
    assert found["env"] == {"python", "repo:mindspeed-mm", "repo:mindspeed", "patch:mindspeed-setup-no-pip",
                            "overlay:dot-product-attention", "copy:megatron", "wheel:torch_npu"}
    # decord's patch is decord's business: toggling it rebuilds decord, never the env or apex
    assert "patch:decord-ffmpeg5" not in found["env"] | found["build:apex"]
    assert found["build:apex"] == {"env", "repo:apex"}
    assert found["build:decord"] == {"env", "repo:decord", "patch:decord-ffmpeg5"}
    assert found["smoke"] == {"env", "build:apex", "build:decord", "dirs"}


def test_switching_decords_strategy_leaves_the_env_and_apex_alone():
    spec = load_spec(DEFAULT_SPEC)
    wheel = dataclasses.replace(spec, builds={**spec.builds, "decord": dataclasses.replace(
        spec.builds["decord"], strategy="wheel")})
    source, prebuilt = deps(spec), deps(wheel)
    assert "repo:decord" not in prebuilt and "patch:decord-ffmpeg5" not in prebuilt
    assert prebuilt["build:decord"] == {"env"}
    assert source["env"] == prebuilt["env"] and source["build:apex"] == prebuilt["build:apex"]


def test_platform_problems_name_what_a_platform_lacks():
    spec = load_spec(DEFAULT_SPEC)
    assert platform_problems(spec, Machine("aarch64", "2.28")) == []
    assert platform_problems(spec, Machine("riscv64", "2.36")) == ["torch_npu has no wheel for riscv64 (it has: aarch64, "
                                                          "x86_64)"]
    x86 = {"torch_npu": ["torch (==2.1.0+cpu)"]}
    assert platform_problems(spec, Machine("x86_64", "2.36"), x86) == []  # the default spec takes torch from the CPU index
    alone = dataclasses.replace(spec, env=dataclasses.replace(spec.env, sources=()))
    [problem] = platform_problems(alone, Machine("x86_64", "2.36"), x86)
    assert problem.startswith("the torch_npu wheel for x86_64 requires torch==2.1.0+cpu, a local version")
    assert platform_problems(alone, Machine("aarch64", "2.28"), {"torch_npu": ["torch (==2.1.0)"]}) == []
    marked = {"torch_npu": ["torch (==2.1.0+cpu) ; platform_machine == 'x86_64'"]}
    assert platform_problems(alone, Machine("aarch64", "2.28"), marked) == []  # the marker says it is not for aarch64
