"""The tools the graders measure with, as they were before any student code ran.

Student code runs in the grading process, so it could replace what a grader measures with:
`time.perf_counter` (to fake a speed-up), `threading.Thread` (to fake concurrency),
`os.cpu_count` or `os.sched_getaffinity` (to have a speed-up check skipped), or one of the
graders' own helpers.  The graders bind their clocks and classes before student code is
imported, so such a change fools no measurement; and since no exercise needs one, a module
that makes one is treated as cheating: the plugin fails every test of the topic (see
plugin.py), naming what was replaced.

Tools() takes the snapshot, once the graders are collected and before the first student
module is imported; changed() names what is no longer the same object, and restore() puts
it back, so that the graders' own machinery runs on (threading.Timer, for one, calls
whatever `threading.Thread` is).
"""

from __future__ import annotations

import builtins
import os
import sys
import threading
import time
from typing import Any

import psutil

from conclab.core.cpus import usable_cpus

# What the graders and the grading machinery rely on, by module.
WATCHED: dict[Any, tuple[str, ...]] = {
    time: (
        "time",
        "time_ns",
        "perf_counter",
        "perf_counter_ns",
        "monotonic",
        "monotonic_ns",
        "process_time",
        "thread_time",
        "sleep",
    ),
    threading: (
        "Thread",
        "Lock",
        "RLock",
        "Condition",
        "Semaphore",
        "BoundedSemaphore",
        "Event",
        "Barrier",
        "Timer",
        "enumerate",
        "active_count",
        "current_thread",
        "main_thread",
        "get_ident",
        "get_native_id",
    ),
    os: (
        "cpu_count",
        "process_cpu_count",
        "sched_getaffinity",
        "getpid",
        "getppid",
        "kill",
        "killpg",
        "waitpid",
        "times",
    ),
    builtins: ("open", "__import__"),
    psutil: ("Process", "process_iter", "wait_procs", "cpu_count"),
}


# Modules whose every function and class (and every class's methods) the grading relies on:
# the package itself, pytest's running and reporting of tests, pluggy's calling of hooks, and
# what the results are written with.
WATCHED_WHOLE = ("conclab", "_pytest", "pluggy", "json", "hmac", "hashlib")


def _watched_objects() -> dict[str, tuple[Any, tuple[str, ...] | None]]:
    """Name -> (namespace, attribute names or None for every callable in it)."""
    spaces: dict[str, tuple[Any, tuple[str, ...] | None]] = {
        module.__name__: (module, names) for module, names in WATCHED.items()
    }
    spaces["psutil.Process"] = (psutil.Process, None)
    for name, module in list(sys.modules.items()):
        if module is not None and name.split(".")[0] in WATCHED_WHOLE:
            spaces[name] = (module, None)
            for attr, value in list(vars(module).items()):
                if isinstance(value, type) and getattr(value, "__module__", None) == name:
                    spaces[f"{name}.{attr}"] = (value, None)
    return spaces


def _members(space: Any, names: tuple[str, ...] | None) -> dict[str, Any]:
    found = vars(space)
    if names is None:
        names = tuple(
            n for n, v in found.items() if callable(v) or isinstance(v, (staticmethod, classmethod, property))
        )
    return {n: found[n] for n in names if n in found}


class Tools:
    """A snapshot of the watched tools (objects compared by identity), and of the CPUs this
    process may use: code that takes CPUs away from it (os.sched_setaffinity) would have
    the speed-up checks skipped as on a one-CPU machine."""

    def __init__(self, pluginmanager: Any = None) -> None:
        self._plugins = pluginmanager
        self._registered = self._hooks()
        self._plugin_ids = self._registered[0] if self._registered else ()
        self._spaces = _watched_objects()
        self._saved = {name: _members(space, names) for name, (space, names) in self._spaces.items()}
        self._cpus = usable_cpus()
        getaffinity = getattr(os, "sched_getaffinity", None)
        self._affinity = getaffinity(0) if getaffinity else None

    def changed(self) -> list[str]:
        """'time.perf_counter', ...: the tools replaced (or removed) since the snapshot, and the CPUs
        if fewer are left."""
        replaced = []
        for name, (space, _) in self._spaces.items():
            now = vars(space)
            for attr, value in self._saved[name].items():
                if now.get(attr, _MISSING) is not value:
                    replaced.append(f"{name}.{attr}")
        if usable_cpus() < self._cpus:
            replaced.append("the CPUs this process may use (os.sched_setaffinity)")
        if self._hooks() != self._registered:
            replaced.append("pytest's plugins or hooks (a plugin registered by the code under test)")
        return replaced

    def _hooks(self) -> Any:
        """The plugins registered with pytest and every hook's implementations, by identity."""
        if self._plugins is None:
            return None
        plugins = tuple(id(plugin) for _, plugin in self._plugins.list_name_plugin())
        hooks = tuple(
            (name, tuple(id(impl.function) for impl in caller.get_hookimpls()))
            for name, caller in sorted(vars(self._plugins.hook).items())
            if hasattr(caller, "get_hookimpls")
        )
        return plugins, hooks

    def restore(self) -> None:
        """Put every replaced tool back (and this thread's CPUs), so that the rest of the run,
        the graders' own machinery included, works as it should."""
        for name, (space, _) in self._spaces.items():
            for attr, value in self._saved[name].items():
                if vars(space).get(attr, _MISSING) is not value:
                    setattr(space, attr, value)
        if self._plugins is not None:
            for _, plugin in list(self._plugins.list_name_plugin()):
                if id(plugin) not in self._plugin_ids:
                    self._plugins.unregister(plugin)
        if self._affinity is not None:
            try:
                os.sched_setaffinity(0, self._affinity)
            except OSError:
                pass


_MISSING = object()


def message(replaced: list[str], filename: str) -> str:
    shown = ", ".join(name if name.startswith("the ") else f"`{name}`" for name in replaced[:5]) + (
        ", ..." if len(replaced) > 5 else ""
    )
    return (
        f"The code under test changed {shown}, which the graders use to measure your code. No exercise "
        f"needs that: change nothing outside your own module ({filename}). Grading cannot trust a run in "
        f"which its tools were changed, so every test of this topic fails."
    )


def refused(refusals: list[str]) -> str:
    """Every test fails once the guard has refused something the code under test did."""
    more = f" (and {len(refusals) - 1} more)" if len(refusals) > 1 else ""
    return (
        f"Grading refused what your code did: {refusals[0]}{more} No exercise needs that, and grading "
        "cannot trust a run that tried it, so every test of this topic fails."
    )
