"""Which torch_npu release Ascend built for which CANN version, as data.

Source: the "Ascend Auxiliary Software" table of the Ascend/pytorch README.md
(https://github.com/Ascend/pytorch, read at commit 19fb59621f7c through the search tool), rows from
CANN 7.0.RC1 on. Where an older revision of that README (commit 006ca00290d3) names another post release
for the same pair (CANN 8.0.RC1 / torch 2.1.0: 2.1.0.post3 there, 2.1.0.post4 later), both are kept.
UPSTREAM.md names the two the default spec cares about: 2.1.0.post8 <-> CANN 8.0.RC3 (the team's) and
2.1.0.post10 <-> CANN 8.0.0 (what MindSpeed-MM's README names).
"""

from __future__ import annotations

from typing import Optional

from packaging.version import InvalidVersion, Version

# (CANN, torch, torch_npu)
TABLE: tuple[tuple[str, str, str], ...] = (
    ("8.2.RC1", "2.6.0", "2.6.0"),
    ("8.2.RC1", "2.5.1", "2.5.1.post1"),
    ("8.2.RC1", "2.1.0", "2.1.0.post13"),
    ("8.1.RC1", "2.5.1", "2.5.1"),
    ("8.1.RC1", "2.4.0", "2.4.0.post4"),
    ("8.1.RC1", "2.3.1", "2.3.1.post6"),
    ("8.1.RC1", "2.1.0", "2.1.0.post12"),
    ("8.0.0", "2.4.0", "2.4.0.post2"),
    ("8.0.0", "2.3.1", "2.3.1.post4"),
    ("8.0.0", "2.1.0", "2.1.0.post10"),
    ("8.0.RC3", "2.4.0", "2.4.0"),
    ("8.0.RC3", "2.3.1", "2.3.1.post2"),
    ("8.0.RC3", "2.1.0", "2.1.0.post8"),
    ("8.0.RC2", "2.3.1", "2.3.1"),
    ("8.0.RC2", "2.2.0", "2.2.0.post2"),
    ("8.0.RC2", "2.1.0", "2.1.0.post6"),
    ("8.0.RC2", "1.11.0", "1.11.0.post14"),
    ("8.0.RC1", "2.2.0", "2.2.0"),
    ("8.0.RC1", "2.1.0", "2.1.0.post4"),
    ("8.0.RC1", "2.1.0", "2.1.0.post3"),
    ("8.0.RC1", "1.11.0", "1.11.0.post11"),
    ("7.0.0", "2.1.0", "2.1.0"),
    ("7.0.0", "2.0.1", "2.0.1.post1"),
    ("7.0.0", "1.11.0", "1.11.0.post8"),
    ("7.0.RC1", "2.1.0", "2.1.0.rc1"),
    ("7.0.RC1", "2.0.1", "2.0.1"),
    ("7.0.RC1", "1.11.0", "1.11.0.post4"),
)

SOURCE = "Ascend/pytorch README, 'Ascend Auxiliary Software'"


def _version(text: str) -> Optional[Version]:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def same_cann(a: str, b: str) -> bool:
    """CANN versions compare case-insensitively ("8.0.RC3" is "8.0.rc3")."""
    return a.strip().upper() == b.strip().upper()


def cann_for(torch_npu: str) -> Optional[str]:
    """The CANN version Ascend built this torch_npu release for; None when the table does not know it."""
    wanted = _version(torch_npu)
    if wanted is None:
        return None
    wanted = Version(wanted.public)  # a local label (+cpu) does not change the pairing
    return next((cann for cann, _torch, npu in TABLE if _version(npu) == wanted), None)


def torch_for(torch_npu: str) -> Optional[str]:
    """The torch release a torch_npu release extends (its base version: 2.1.0.post8 -> 2.1.0)."""
    version = _version(torch_npu)
    return version.base_version if version is not None else None


def torch_npu_for(cann: str, torch: str) -> list[str]:
    """The torch_npu releases Ascend built for this CANN and torch (newest first)."""
    base = torch_for(torch) or torch
    return [npu for c, t, npu in TABLE if same_cann(c, cann) and t == base]
