"""The download itself, by the hub's own client (huggingface_hub's snapshot_download), in a child process.

A child, because huggingface_hub takes its settings (endpoint, HF_HOME, CA bundle, xet, progress bars) from
the environment when it is imported: the child gets exactly npuenv's, and the tool's own process stays
untouched. It resumes what an interrupted run left (its `.incomplete` files under NAME/.cache) with Range
requests. `python -m npuenv.models.download HUB REVISION FOLDER ERROR_FILE` — run by npuenv, not by people."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from ..errors import ModelError

WORKERS = "4"  # files fetched at once (huggingface_hub's default is 8; shards are GBs each)


def child_env(environ: Mapping[str, str], endpoint: str, hf_home: Path, ca_bundle: Path, progress: bool) -> dict:
    from ..trust import client_env

    env = {k: v for k, v in environ.items() if not k.startswith("HF_HUB_")}
    env.update(client_env(ca_bundle))
    env.update({"HF_ENDPOINT": endpoint, "HF_HOME": str(hf_home),
                "HF_HUB_DISABLE_XET": "1",  # plain HTTPS with Range: what hub mirrors serve, through our CA
                "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DOWNLOAD_TIMEOUT": "60",
                "HF_HUB_DISABLE_PROGRESS_BARS": "0" if progress else "1"})
    return env


def run(hub: str, revision: str, folder: Path, env: Mapping[str, str], error_file: Path) -> None:
    """Download `hub` at `revision` (a commit) into `folder`; its progress bars go to our stderr, its error
    (one line) to `error_file`, raised here as a ModelError."""
    from ..commands import finish, spawn

    error_file.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "npuenv.models.download", hub, revision, str(folder), str(error_file)]
    # supervised: if npuenv dies or is interrupted, the download stops too instead of writing on alone
    proc = spawn(argv, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    finish(proc, lambda: None)
    returncode = proc.returncode
    if returncode != 0:
        try:
            said = error_file.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            said = ""
        raise ModelError(f"downloading {hub}@{revision[:12]} failed: {said or f'exit code {returncode}'}",
                         hint="run the same command again: it resumes what was downloaded")


def main(argv: list[str]) -> int:
    hub, revision, folder, error_file = argv
    try:
        from huggingface_hub import snapshot_download

        snapshot_download(repo_id=hub, revision=revision, local_dir=folder, max_workers=int(WORKERS))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the parent reports it: one line, no traceback
        first = str(exc).splitlines()[0] if str(exc) else ""
        Path(error_file).write_text(f"{type(exc).__name__}: {first}\n", encoding="utf-8")
        return 3
    return 0


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main(sys.argv[1:]))
