"""The one place errors are caught: expected failures print one message and a hint and exit non-zero;
Ctrl-C exits 130; anything else is a bug and shows its traceback."""

from __future__ import annotations

import functools
import sys
import traceback
from typing import Any, Callable

from invoke import Exit


def boundary(body: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(body)
    def wrapper(c: Any, *args: Any, **kwargs: Any) -> Any:
        from ..errors import NpuenvError
        from ..render.console import Console

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

