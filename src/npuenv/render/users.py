"""`user.*` as text: what user.add did, the list of people, the SSH and VS Code snippets, what user.vscode
changed, and user.check (doctor's isolation rows under the person's name)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import doctor


def added(result: Any) -> list[str]:
    """user.add: what it made or changed, and how to enter (its warnings go to the console's warn)."""
    paths = result.paths
    verb = "created" if result.created else ("updated" if result.changed else "up to date:")
    lines = [f"{verb} {paths.home} (init.sh starts {result.shell}; CA bundle: {result.bundle.total} certificates)"]
    if result.changed:
        lines.append("  wrote " + ", ".join(str(p.relative_to(paths.home)) for p in result.changed))
    if result.backup:
        lines.append(f"  the previous init.sh is kept as {result.backup}")
    if result.shared_uv:
        lines.append(f"  shared uv: {result.shared_uv}")
    return [*lines, f"enter it: {paths.init_sh}  (SSH and VS Code snippets: invoke user.show {paths.name})",
            "your own lines go below the marker line at the end of init.sh; user.add keeps them"]


def people(users: Sequence[Any], root: str) -> list[str]:
    """user.list: one row per person's folder."""
    if not users:
        return [f"no users in {root} yet: invoke user.add NAME --root {root}"]
    width = max(len(u.name) for u in users)
    return [f"{'name':<{width}}  {'shell':<5}  {'init.sh':<10}  env  folder",
            *(f"{u.name:<{width}}  {u.shell or '-':<5}  {u.state:<10}  {'yes' if u.env else 'no ':<3}  {u.home}"
              for u in users)]


def snippets(found: Any) -> list[str]:
    """user.show: the SSH config block, then the VS Code settings lines."""
    paths = found.paths
    return [found.ssh_config,
            f"// VS Code: into .vscode/settings.json of a folder inside {paths.home}"
            f" (or: invoke user.vscode {paths.name} --project DIR)",
            found.vscode]


def vscode(result: Any) -> list[str]:
    """user.vscode: the settings file and what happened to it."""
    if result.state == "unchanged":
        return [f"up to date: {result.settings} (terminal profile {result.profile!r})"]
    lines = [f"{result.state} {result.settings}: terminal profile {result.profile!r} is the default"]
    return lines + ([f"  the previous file is kept as {result.backup}"] if result.backup else [])


def check(report: Any) -> list[str]:
    """user.check: the isolation checks as doctor shows them, under NAME, then how many issues."""
    note = [f"note: {report.missing} does not exist here (not a ModelArts box?): checking against "
            f"{report.persistent}"] if report.missing else []
    title = f"isolation of {report.paths.name} (the environment {report.paths.init_sh} gives)"
    issues = sum(o.result.status.value in ("warn", "fail", "crash") for o in report.outcomes)
    summary = (f"{issues} issue{'s' if issues != 1 else ''} found" if issues
               else f"everything lives under {report.persistent}")
    return [*note, *doctor.rows(report.outcomes, {"isolation": title}), "", summary]
