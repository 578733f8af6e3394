"""`conclab dev bench`: how much faster the reference solutions' CPU-bound functions run
in parallel on this machine.  A measurement, not a test: it prints, it never fails.

For each function it prints the best-of-N wall time with one worker and with as many
workers as there are usable CPUs, the speed-up, and the ideal (the number of CPUs).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import machine, manifest, parallel, workers

# (topic, module, function, how to call it with n workers), for the CPU-bound functions.
CASES = [
    ("08_gil", "gil", "count_primes", lambda f, n: f([150_000] * 8, n)),
    ("12_pool", "pool_tasks", "sum_of_squares", lambda f, n: f(60_000_000, n)),
    ("13_futures", "executors", "parallel_map", lambda f, n: f(workers.burn, [4_000_000] * 8, n)),
]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="conclab dev bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs of each variant; the best counts (default 3)")
    parser.add_argument("--impl", default=None, help="folder of topic folders (default: solutions/)")
    parser.add_argument("--start-method", choices=("fork", "forkserver", "spawn"), default=None)
    options = parser.parse_args(argv)
    if options.rounds < 1:
        parser.error("--rounds must be at least 1")
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
        print(f"{module_name + '.' + function:<28} {measured.serial:8.2f}s {measured.parallel:10.2f}s "
              f"{measured.ratio:8.2f}x {cpus:5d}x", flush=True)
    return 0
