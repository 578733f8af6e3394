"""How many CPUs this process may really use, and how much of them other programs take."""

from __future__ import annotations

import os
from dataclasses import dataclass


def usable_cpus() -> int:
    """How many CPUs this process can use: its affinity mask, capped by a cgroup CPU quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    try:  # cgroup v2: "max 100000" or "200000 100000"
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cpus


# -- how much of those CPUs other programs take

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class Busy:
    """How long the CPUs this process may use have been busy so far, in CPU seconds, every
    program counted: on the CPUs of its affinity mask (/proc/stat, time stolen by a
    hypervisor included), and in its cgroup when a quota caps that (cgroup v2 cpu.stat).
    None where a reading is not to be had (not Linux, no quota)."""

    cpus: float | None
    group: float | None


def _affinity() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def _cpus_busy(affinity: set[int] | None) -> float | None:
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            lines = [line.split() for line in stat if line.startswith("cpu") and line[3:4].isdigit()]
    except OSError:
        return None
    busy = 0
    try:
        for fields in lines:
            if affinity is None or int(fields[0][3:]) in affinity:
                user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[1:9])
                busy += user + nice + system + irq + softirq + steal
    except (ValueError, IndexError):
        return None
    return busy / _TICK if lines else None


def _group_folder() -> str | None:
    """This process's cgroup v2 folder, when a CPU quota applies to it."""
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as groups:
            path = next((line.strip()[3:] for line in groups if line.startswith("0::")), None)
        if path is None:
            return None
        folder = "/sys/fs/cgroup" + path.rstrip("/")
        with open(folder + "/cpu.max", encoding="ascii") as limit:
            return None if limit.read().split()[0] == "max" else folder
    except (OSError, IndexError):
        return None


def _group_busy(folder: str | None) -> float | None:
    if folder is None:
        return None
    try:
        with open(folder + "/cpu.stat", encoding="ascii") as stat:
            for line in stat:
                name, _, value = line.partition(" ")
                if name == "usage_usec":
                    return int(value) / 1e6
    except (OSError, ValueError):
        pass
    return None


def busy_now() -> Busy:
    return Busy(_cpus_busy(_affinity()), _group_busy(_group_folder()))


def others_took(before: Busy, after: Busy, own: float, wall: float) -> float | None:
    """How many of the usable CPUs other programs kept busy, on average, between two
    readings `wall` seconds apart, the `own` CPU seconds of this process and its children
    aside.  None where neither reading can be had."""
    if wall <= 0:
        return None
    usable = usable_cpus()
    spare = []
    affinity = _affinity()
    if before.cpus is not None and after.cpus is not None:
        cpus = len(affinity) if affinity else (os.cpu_count() or 1)
        spare.append(cpus - max(0.0, after.cpus - before.cpus - own) / wall)
    if before.group is not None and after.group is not None:
        spare.append(usable - max(0.0, after.group - before.group - own) / wall)
    if not spare:
        return None
    return max(0.0, usable - min(spare))
