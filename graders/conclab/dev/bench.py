"""`conclab dev bench`: how much faster the reference solutions' CPU-bound functions run
in parallel on this machine.  A measurement, not a test: it prints, it never fails.

For each function it prints the best-of-N wall time with one worker and with as many
workers as there are usable CPUs, the speed-up, and the ideal (the number of CPUs).
"""

from __future__ import annotations

import importlib
import sys

from conclab import commandline, manifest
from conclab.core import machine
from conclab.kit import parallel, workers

# (topic, module, function, how to call it with n workers), for the CPU-bound functions.
CASES = [
    ("08_gil", "gil", "count_primes", lambda f, n: f([150_000] * 8, n)),
    ("12_pool", "pool_tasks", "sum_of_squares", lambda f, n: f(60_000_000, n)),
    ("13_futures", "executors", "parallel_map", lambda f, n: f(workers.burn, [4_000_000] * 8, n)),
]


def register(commands) -> None:
    parser = commandline.command(
        commands, "bench", run, "the parallel speed-ups of the solutions on this machine", __doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--rounds",
        type=commandline.at_least_one,
        default=3,
        metavar="N",
        help="runs of each variant; the best counts (default 3)",
    )
    parser.add_argument("--impl", metavar="DIR", default=None, help="folder of topic folders (default: solutions/)")
    commandline.add_start_method(parser)


def run(options) -> int:
    impl = options.impl or str(manifest.course_root() / "solutions")
    if options.start_method:
        import multiprocessing

        multiprocessing.set_start_method(options.start_method, force=True)
    cpus = parallel.usable_cpus()
    print(f"{cpus} usable CPU(s); best of {options.rounds} runs, serial and parallel interleaved")
    print(f"{'function':<28} {'1 worker':>9} {f'{cpus} workers':>11} {'speed-up':>9} {'ideal':>6}")
    for topic_id, module_name, function, run in CASES:
        if topic_id not in {t.id for t in manifest.topics()}:
            continue
        sys.path.insert(0, f"{impl}/{topic_id}")
        func = getattr(importlib.import_module(module_name), function)
        with machine.share(alone=True):  # a measurement of speed-ups needs the machine, as the timing graders do
            measured = parallel.speedup(lambda: run(func, 1), lambda: run(func, cpus), rounds=options.rounds)
        print(
            f"{module_name + '.' + function:<28} {measured.serial:8.2f}s {measured.parallel:10.2f}s "
            f"{measured.ratio:8.2f}x {cpus:5d}x",
            flush=True,
        )
    return 0
