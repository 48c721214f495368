"""The one place errors are caught: expected failures print one message and a hint and exit non-zero;
Ctrl-C exits 130; anything else is a bug and shows its traceback."""

from __future__ import annotations

import functools
import inspect
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

from invoke import Exit


def boundary(body: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(body)
    def wrapper(c: Any, *args: Any, **kwargs: Any) -> Any:
        from ..errors import NpuenvError
        from ..render.console import Console

        if asks_for_help(body, args, kwargs):
            print_help(wrapper)
            raise Exit(code=0)
        try:
            return body(c, *args, **kwargs)
        except NpuenvError as exc:
            Console().error(exc)
            raise Exit(code=exc.exit_code) from None
        except KeyboardInterrupt:
            sys.stderr.write("interrupted: run the same command again to resume\n")
            raise Exit(code=130) from None
        except OSError as exc:  # the filesystem said no: name the file, never a traceback
            Console().error(filesystem_error(exc))
            raise Exit(code=1) from None
        except Exit:
            raise
        except Exception:
            sys.stderr.write("npuenv crashed: this is a bug in npuenv. Please report it with this output:\n")
            traceback.print_exc()
            raise Exit(code=70) from None
    return wrapper


HELP_FLAGS = ("-h", "--help")


def asks_for_help(body: Callable[..., Any], args: tuple, kwargs: dict) -> bool:
    """`TASK --help` where TASK takes a positional argument: invoke's parser fills the argument with `--help`
    before it looks for flags, so the task receives it as NAME (or TASK) and would act on it."""
    parameters = list(inspect.signature(body).parameters.values())[1:]
    given = dict(zip((p.name for p in parameters), args), **kwargs)
    return any(given.get(p.name) in HELP_FLAGS for p in parameters if p.default is inspect.Parameter.empty)


def print_help(wrapper: Callable[..., Any]) -> None:
    """What `invoke --help TASK` prints, for the task whose body is `wrapper`, under the name it was run by."""
    from invoke import Program

    from . import ns

    binary = "npuenv" if Path(sys.argv[0]).name == "npuenv" else "invoke"
    name = next(name for name in ns.task_names if ns[name].body is wrapper)
    try:
        Program(namespace=ns, name=binary, binary=binary).run([binary, "--help", name], exit=False)
    except Exit:  # invoke ends its help with Exit(0)
        pass


def filesystem_error(exc: OSError) -> Any:
    """An OSError as a user-facing error: what failed, on which path, and what usually helps."""
    import errno

    from ..errors import NpuenvError

    paths = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
    hints = {errno.EROFS: "that folder is on a read-only mount: pick a --root you can write to",
             errno.EACCES: "check who owns that path and its permissions (ls -ld)",
             errno.EPERM: "check who owns that path and its permissions (ls -ld)",
             errno.ENOSPC: "the disk is full: free some space (invoke doctor --check storage)",
             errno.EDQUOT: "the disk quota is used up: free some space"}
    return NpuenvError(f"{exc.strerror or exc}" + (f": {paths}" if paths else ""), hints.get(exc.errno, ""))


def mirrors_config(c: Any) -> Any:
    """The `npuenv.mirrors` invoke config value (invoke.yaml), if any."""
    try:
        return c.config.npuenv.mirrors
    except AttributeError:
        return None


def positive_int(value: Any, option: str, example: int) -> int:
    """An option taken as a string on purpose: invoke casts int options itself and dies with a traceback
    on a non-number. Here a bad value is a usage error that names the option."""
    from ..errors import UsageError

    try:
        number = int(value)
    except (TypeError, ValueError):
        raise UsageError(f"{option} {value}: expected a whole number", hint=f"e.g. {option} {example}") from None
    if number < 1:
        raise UsageError(f"{option} {value}: expected at least 1", hint=f"e.g. {option} {example}")
    return number

