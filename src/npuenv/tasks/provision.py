"""`bootstrap`: provision a workspace from a spec."""

from __future__ import annotations

from invoke import task

from ..defaults import DEFAULT_SPEC
from ..errors import UsageError
from .boundary import boundary, mirrors_config, positive_int


@task(
    help={
        "root": "workspace folder (default /home/ma-user/work/$NPUENV_USER); npuenv writes only below it",
        "spec": f"spec name in env_specs/ or a path to a YAML file (default: the spec this workspace was made with, else {DEFAULT_SPEC})",
        "dry-run": "print each step and why it would (not) run; change nothing",
        "only": "ID[,ID]: run only these step ids (comma-separated, repeatable) and what they need",
        "force": "ID[,ID]: run these step ids even when up to date (comma-separated, repeatable)",
        "jobs": "how many independent steps run at once (default 4)",
        "ca-bundle": "FILE: an extra CA file (PEM) to trust besides the public roots (repeatable)",
        "python": "the target env's interpreter, e.g. /path/to/python3.10 (default: found or installed)",
        "wheels": "the wheelhouse folder (default: the one this workspace last used, else this checkout's wheels/)",
        "wait": "wait for another npuenv run in the same workspace instead of refusing",
        "json": "print the plan (with --dry-run) or the run as one JSON object instead of lines and a table",
        "locked": "refuse unless the spec's lock (written by `invoke lock`) is current and covers this machine",
        "bundle": "FILE: take everything from this `invoke bundle` file and nothing from the network (air-gapped)",
    },
    iterable=["only", "force", "ca_bundle"],
)
@boundary
def bootstrap(c, root=None, spec=None, dry_run=False, only=None, force=None, jobs="4", ca_bundle=None,
              python=None, wheels=None, wait=False, json_=False, locked=False, bundle=None):
    """Provision the workspace from a spec: clone, patch, fetch, and fill the target env (resumable)."""
    from ..bootstrap import Options, bootstrap as run_bootstrap
    from ..render.bootstrap import JsonReporter, TextReporter
    from ..render.console import Console

    options = Options(root=root, spec=spec, dry_run=dry_run, only=list(only or []), force=list(force or []),
                      jobs=positive_int(jobs, "--jobs", 4), ca_bundle=list(ca_bundle or []), python=python, wheels=wheels, wait=wait,
                      mirrors_config=mirrors_config(c), locked=locked, bundle=bundle)
    run_bootstrap(options, (JsonReporter if json_ else TextReporter)(Console()))


@task(
    help={
        "root": "workspace folder whose sources are locked (made and brought to the spec when needed)",
        "spec": f"spec name in env_specs/ or a path to a YAML file (default: the workspace's, else {DEFAULT_SPEC}); "
                "the lock is written beside it",
        "upgrade": "resolve every package afresh (default: keep the locked versions the spec still allows)",
        "arch": "aarch64 or x86_64: lock only these architectures (repeatable; default both)",
        "python": "the target env's interpreter, e.g. /path/to/python3.10 (default: found or installed)",
        "wheels": "the wheelhouse folder (default: the one this workspace last used, else this checkout's wheels/)",
        "ca-bundle": "FILE: an extra CA file (PEM) to trust besides the public roots (repeatable)",
        "wait": "wait for another npuenv run in the same workspace instead of refusing",
        "json": "print the run as one JSON object instead of lines and a table",
    },
    iterable=["arch", "ca_bundle"],
)
@boundary
def lock(c, root=None, spec=None, upgrade=False, arch=None, python=None, wheels=None, ca_bundle=None, wait=False,
         json_=False):
    """Pin the whole stack beside the spec: commits, hashes, the exact Python and the target env's packages."""
    from ..bootstrap import Options, bootstrap as run_bootstrap
    from ..locking import ARCHES, LockRequest, lock_step
    from ..render.bootstrap import JsonReporter, TextReporter
    from ..render.console import Console

    arches = tuple(dict.fromkeys(arch or ARCHES))
    unknown = [a for a in arches if a not in ARCHES]
    if unknown:
        raise UsageError(f"--arch {unknown[0]}: not an architecture npuenv locks",
                         hint=f"give {' or '.join(ARCHES)}, as `uname -m` prints them")
    request = LockRequest(arches, upgrade)
    options = Options(root=root, spec=spec, ca_bundle=list(ca_bundle or []), python=python, wheels=wheels, wait=wait,
                      mirrors_config=mirrors_config(c), force=["lock"] if upgrade else [],
                      final_step=lambda spec, steps: lock_step(spec, steps, request))
    run_bootstrap(options, (JsonReporter if json_ else TextReporter)(Console()))


@task(
    help={
        "out": "FILE: where the bundle is written (replaced whole, never half-written)",
        "arch": "aarch64 or x86_64: the platform of the air-gapped box (default: this machine's)",
        "verify": "FILE: check a bundle (every member against the manifest's sha256) instead of making one",
        "root": "workspace folder whose checkouts are bundled (brought to the spec when needed)",
        "spec": f"spec name in env_specs/ or a path to a YAML file (default: the workspace's, else {DEFAULT_SPEC}); "
                "it must have a current lock (`invoke lock`)",
        "python": "the target env's interpreter, e.g. /path/to/python3.10 (default: found or installed)",
        "wheels": "the wheelhouse folder (default: the one this workspace last used, else this checkout's wheels/)",
        "ca-bundle": "FILE: an extra CA file (PEM) to trust besides the public roots (repeatable)",
        "wait": "wait for another npuenv run in the same workspace instead of refusing",
        "json": "print the run (or the verified manifest) as one JSON object",
    },
    iterable=["ca_bundle"],
)
@boundary
def bundle(c, out=None, arch=None, verify=None, root=None, spec=None, python=None, wheels=None, ca_bundle=None,
           wait=False, json_=False):
    """Write one file with everything an air-gapped box needs for the locked spec (git, wheels); --verify one."""
    from pathlib import Path

    from ..render.console import Console

    if verify:
        from ..bundle import verify as check_bundle
        from ..render.bundle import render_verified

        render_verified(Console(), check_bundle(Path(verify)), json_)
        return
    _make_bundle(c, out, arch, root, spec, python, wheels, ca_bundle, wait, json_)


def _make_bundle(c, out, arch, root, spec, python, wheels, ca_bundle, wait, json_):
    from pathlib import Path

    from ..bootstrap import Options, bootstrap as run_bootstrap
    from ..bundle import BundleRequest, bundle_step
    from ..locking import ARCHES
    from ..machine import arch as this_arch
    from ..render.bootstrap import JsonReporter, TextReporter
    from ..render.console import Console

    if not out:
        raise UsageError("give --out FILE (where to write the bundle) or --verify FILE", hint="invoke bundle --help")
    arch = arch or this_arch()
    if arch not in ARCHES:
        raise UsageError(f"--arch {arch}: not an architecture npuenv bundles", hint=f"give {' or '.join(ARCHES)}")
    target = Path(out).absolute()
    if not target.parent.is_dir():
        raise UsageError(f"--out {out}: the folder {target.parent} does not exist", hint="create it first")
    request = BundleRequest(target, arch)
    options = Options(root=root, spec=spec, ca_bundle=list(ca_bundle or []), python=python, wheels=wheels, wait=wait,
                      mirrors_config=mirrors_config(c), final_step=lambda spec, steps: bundle_step(spec, steps, request))
    run_bootstrap(options, (JsonReporter if json_ else TextReporter)(Console()))
