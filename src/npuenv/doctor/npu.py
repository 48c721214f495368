"""NPU devices & processes: npu-smi runs, the devices are visible and healthy, and who holds them.

One discovery (kill-npu's: npu-smi's tables plus a /proc scan of the device files) serves all four checks.
Every NPU is named by its NPU number (/dev/davinciN, ASCEND_RT_VISIBLE_DEVICES), as kill-npu names it;
npu-smi's own NPU ID names a card, which may hold two chips: where the two differ, the card is shown too.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..npu import kill as killnpu
from ..npu.procs import UNREADABLE, short_command
from .base import CheckResult, check, fail, ok, skip, warn

NO_SMI = "npu-smi did not run (see npu.smi)"


def config(ctx) -> killnpu.Config:
    """Where to look (NPUENV_NPU_SMI, NPUENV_DEVICE_GLOB), as kill-npu reads them; raises KillNpuError."""
    if isinstance(ctx.npu, Exception):
        raise ctx.npu
    return ctx.npu if ctx.npu is not None else killnpu.Config.from_env(ctx.environ)


def snapshot(ctx) -> killnpu.Snapshot:
    return ctx.memo.get("npu-snapshot", lambda: killnpu.discover(config(ctx)))


def _smi_note(snap: killnpu.Snapshot) -> str:
    return next((n for n in snap.notes if n.startswith("npu-smi")), "npu-smi gave no device table")


@check("npu.smi", "npu-smi is installed and `npu-smi info` answers")
def smi(ctx) -> CheckResult:
    try:
        cfg = config(ctx)
    except killnpu.KillNpuError as exc:
        return fail(exc.message, exc.hint)
    if cfg.npu_smi is None:
        return fail(f"npu-smi not found ({', '.join(killnpu.NPU_SMI_LOCATIONS)}, PATH)",
                    "install the NPU driver (it brings npu-smi), or set NPUENV_NPU_SMI to its path")
    snap = snapshot(ctx)
    if snap.smi is None:
        return fail(f"{_smi_note(snap)} ({cfg.npu_smi})",
                    f"run `{cfg.npu_smi} info` by hand: a driver that is not loaded or a container without "
                    "/dev/davinci_manager make it fail")
    return ok(f"{cfg.npu_smi}: {_listed(snap, 'in its table')}")


def _listed(snap: killnpu.Snapshot, said: str) -> str:
    """"8 NPU(s) <said>", with the cards where they hold several chips: "8 NPU(s) OK (4 cards × 2 chips)"."""
    count = len(snap.numbering.devices) or len(snap.smi.devices)
    cards = _cards(snap)
    return f"{count} NPU(s) {said}" + (f" ({cards})" if cards else "")


def _cards(snap: killnpu.Snapshot) -> str:
    """"4 cards × 2 chips" when npu-smi's NPU IDs are cards of several chips, else ""."""
    if snap.smi is None or not snap.numbering.several_chips:
        return ""
    per_card = {len(snap.numbering.of_card(d.npu)) for d in snap.smi.devices}
    cards = len(snap.smi.devices)
    return f"{cards} cards × {per_card.pop()} chips" if len(per_card) == 1 else f"{cards} cards"


def _device_numbers(snap: killnpu.Snapshot) -> tuple[list[int], list[int]]:
    """The NPU numbers of the device files, and those npu-smi lists (its (NPU ID, Chip ID) mapped)."""
    files = sorted(set(snap.devices.values()))
    listed = snap.numbering.devices if snap.smi else []
    return files, listed


def _card_names(snap: killnpu.Snapshot, device, name: bool = False) -> str:
    """An npu-smi card by its NPU numbers: "NPU 2" where its NPU ID is its NPU number, else "NPU 2, 3 (card
    32)"; with `name`, its name joins the parentheses: "NPU 2 (910B1)", "NPU 2, 3 (310P3, card 32)"."""
    numbers = snap.numbering.of_card(device.npu)
    extras = ([device.name] if name else []) + ([] if snap.numbering.identity else [f"card {device.npu}"])
    return (f"NPU {', '.join(map(str, numbers)) if numbers else '?'}"
            + (f" ({', '.join(extras)})" if extras else ""))


def _ranges(numbers: list[int]) -> str:
    return ", ".join(map(str, numbers)) if numbers else "none"


@check("npu.devices", "NPUs are visible (device files, npu-smi), and NPUS_PER_NODE fits them")
def devices(ctx) -> CheckResult:
    try:
        snap = snapshot(ctx)
    except killnpu.KillNpuError:
        return skip(NO_SMI)
    files, listed = _device_numbers(snap)
    glob = snap.config.device_glob
    if not files and not listed:
        return fail(f"no NPU visible: nothing matches {glob} and npu-smi lists none",
                    "on ModelArts pick an NPU flavour; in a container pass the devices "
                    "(--device /dev/davinci0 ... --device /dev/davinci_manager); NPUENV_DEVICE_GLOB names "
                    "device files elsewhere")
    count = len(files) or len(listed)
    wanted = ctx.environ.get("NPUS_PER_NODE", "").strip()
    if wanted.isdigit() and int(wanted) > count:
        return fail(f"NPUS_PER_NODE={wanted}, but {count} NPU(s) are visible: HCCL fails with error code 7",
                    f"export NPUS_PER_NODE={count} (the finetune scripts default to 8)")
    manager = Path(os.path.dirname(glob)) / "davinci_manager"
    if files and not manager.exists():
        return warn(f"NPU(s) {_ranges(files)}, but {manager} is missing: the driver cannot be reached",
                    "in a container, also pass --device /dev/davinci_manager --device /dev/devmm_svm "
                    "--device /dev/hisi_hdc")
    if files and listed and files != listed:
        fix = ("in a container npu-smi may see the host's NPUs: use the ones mounted here "
               "(ASCEND_RT_VISIBLE_DEVICES)")
        if snap.numbering.guessed:
            fix += ("; `npu-smi info -m` gave no chip map, so the chips of each card were numbered in table "
                    "order: compare with `npu-smi info -m`")
        return warn(f"device files for NPU(s) {_ranges(files)}, npu-smi lists {_ranges(listed)}", fix)
    name = next((d.name for d in snap.smi.devices), "") if snap.smi else ""
    about = "; ".join(t for t in (name, _cards(snap)) if t)
    return ok(f"{count} NPU(s): {_ranges(files or listed)}" + (f" ({about})" if about else ""))


@check("npu.health", "npu-smi reports every NPU's health as OK")
def health(ctx) -> CheckResult:
    try:
        snap = snapshot(ctx)
    except killnpu.KillNpuError:
        return skip(NO_SMI)
    if snap.smi is None:
        return skip(NO_SMI)
    if not snap.smi.devices:
        return skip("npu-smi lists no device")
    bad = [d for d in snap.smi.devices if d.health.strip().upper() != "OK"]
    details = [f"{_card_names(snap, d, name=True)}: {_health(d)}" for d in snap.smi.devices]
    if not bad:
        return ok(_listed(snap, "OK"), details)
    text = ", ".join(f"{_card_names(snap, d)}: {_health(d)}" for d in bad)
    fix = "see `npu-smi info -t health -i N`; a device that stays unhealthy needs the box restarted or replaced"
    if all(_WARNING.match(d.health.strip()) for d in bad):
        return warn(text, fix, details)
    return fail(text, fix, details)


# "Warning", and a warning with its code ("Warning 2", "Warning(2)"); anything else not OK fails
_WARNING = re.compile(r"warning\b[\s(\d)]*$", re.IGNORECASE)


def _health(device) -> str:
    return device.health.strip() or "no health value"


def _holders(rows: list, identity: bool = True) -> list[str]:
    """One line per process: its NPUs (and npu-smi's card and chip, where they differ), whose it is, its
    memory, its command."""
    lines = []
    for pid in dict.fromkeys(r.pid for r in rows):
        mine = [r for r in rows if r.pid == pid]
        first = mine[0]
        who = "untagged" if first.tag is None else ("?" if first.tag == UNREADABLE else first.tag)
        if first.reason == killnpu.HOST_PID:
            who = killnpu.HOST_PID
        memory = sum(r.memory_mb for r in mine if r.memory_mb is not None)
        shown = f", {memory} MB" if any(r.memory_mb is not None for r in mine) else ""
        npus = ", ".join(str(r.device) for r in mine)
        cards = ", ".join(f"card {r.card[0]} chip {r.card[1]}" for r in mine if r.card is not None)
        where = f"{cards}; " if cards and not identity else ""
        lines.append(f"PID {pid} on NPU {npus} ({where}{who}{shown}): {short_command(first.command)}")
    return lines


@check("npu.processes", "processes holding NPUs (a dead run's leftovers make the next fail with HCCL code 7)")
def processes(ctx) -> CheckResult:
    try:
        snap = snapshot(ctx)
    except killnpu.KillNpuError:
        return skip(NO_SMI)
    if snap.smi is None and not snap.devices:  # neither source looked: "nobody" would be a guess
        why = _smi_note(snap).replace(": using /proc only", "") if snap.config.npu_smi else "npu-smi not found"
        return skip(f"cannot tell: {why}, and no device file matches {snap.config.device_glob} for a /proc scan")
    plan = killnpu.make_plan(snap, None, all_users=True)
    rows = plan.rows
    if not rows:
        return ok("no process holds an NPU")
    busy = sorted({r.device for r in rows})
    details = _holders(rows, plan.numbering.identity)
    mine = ctx.environ.get("NPUENV_USER")
    fix = "look with `invoke kill-npu --dry-run`; stop yours with `invoke kill-npu`"
    if not mine:
        fix += " (tagged by NPUENV_USER: see isolation.tag)"
    return warn(f"{len(details)} process(es) hold NPU(s) {_ranges(busy)}: a new run on them fails", fix, details)


CHECKS = [smi, devices, health, processes]

