"""The Invoke tasks: thin wrappers that parse options, call the library, and render through a reporter.

Errors are caught at one boundary (`boundary`): expected failures print one message and a hint and exit
non-zero; Ctrl-C exits 130; anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import functools
import sys
import traceback
from typing import Any, Callable

from invoke import Collection, Exit, task

DEFAULT_SPEC = "mindspeed-mm-internvl2.5"


def boundary(body: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(body)
    def wrapper(c: Any, *args: Any, **kwargs: Any) -> Any:
        from .errors import NpuenvError
        from .report import Console

        try:
            return body(c, *args, **kwargs)
        except NpuenvError as exc:
            Console().error(exc)
            raise Exit(code=exc.exit_code) from None
        except KeyboardInterrupt:
            sys.stderr.write("interrupted: run the same command again to resume\n")
            raise Exit(code=130) from None
        except Exit:
            raise
        except Exception:
            sys.stderr.write("npuenv crashed: this is a bug in npuenv. Please report it with this output:\n")
            traceback.print_exc()
            raise Exit(code=70) from None
    return wrapper


def _mirrors_config(c: Any) -> Any:
    try:
        return c.config.npuenv.mirrors
    except AttributeError:
        return None


@task(
    help={
        "root": "workspace folder (default /home/ma-user/work/$NPUENV_USER); npuenv writes only below it",
        "spec": f"spec name in env_specs/ or a path to a YAML file (default {DEFAULT_SPEC})",
        "dry-run": "print each step and why it would (not) run; change nothing",
        "only": "run only these step ids (comma-separated, repeatable) and what they need",
        "force": "run these step ids even when up to date (comma-separated, repeatable)",
        "jobs": "how many independent steps run at once (default 4)",
        "ca-bundle": "an extra CA file (PEM) to trust besides the public roots (repeatable)",
        "python": f"the target env's interpreter, e.g. /path/to/python3.10 (default: found or installed)",
        "wheels": "the wheelhouse folder (default: this checkout's wheels/)",
        "wait": "wait for another npuenv run in the same workspace instead of refusing",
    },
    iterable=["only", "force", "ca_bundle"],
)
@boundary
def bootstrap(c, root=None, spec=DEFAULT_SPEC, dry_run=False, only=None, force=None, jobs=4, ca_bundle=None,
              python=None, wheels=None, wait=False):
    """Provision the workspace from a spec: clone, patch, fetch, and fill the target env (resumable)."""
    from .bootstrap import Options, bootstrap as run_bootstrap
    from .report import Console

    options = Options(root=root, spec=spec, dry_run=dry_run, only=list(only or []), force=list(force or []),
                      jobs=int(jobs), ca_bundle=list(ca_bundle or []), python=python, wheels=wheels, wait=wait,
                      mirrors_config=_mirrors_config(c))
    run_bootstrap(options, Console())


ns = Collection()
ns.add_task(bootstrap)
ns.configure({"npuenv": {"mirrors": {}}})
