"""Topic 13: concurrent.futures. Executors run callables; futures follow each one."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from typing import Any


def fetch_all(urls: Iterable[str], fetch: Callable[[str], Any], max_workers: int = 8) -> dict:
    """{url: fetch(url)} for every url, fetched by up to `max_workers` threads at once; a
    url whose fetch raised maps to the exception instead."""
    results: dict[str, Any] = {}
    with ThreadPoolExecutor(max_workers=max_workers) as executor:
        futures = {executor.submit(fetch, url): url for url in urls}
        for future in as_completed(futures):  # each one as soon as it is done
            error = future.exception()
            results[futures[future]] = error if error is not None else future.result()
    return results


def first_success(funcs: Iterable[Callable[[], Any]], max_workers: int = 4, timeout: float | None = None) -> Any:
    """The result of whichever function succeeds first.  Functions that have not started
    by then are cancelled; the ones still running are not waited for.  If every function
    failed, the last failure is raised; TimeoutError if none succeeded within `timeout`."""
    executor = ThreadPoolExecutor(max_workers=max_workers)
    futures = [executor.submit(func) for func in funcs]
    try:
        last_error: BaseException | None = None
        for future in as_completed(futures, timeout=timeout):  # in the order they finish
            error = future.exception()
            if error is None:
                return future.result()
            last_error = error
        if last_error is None:
            raise ValueError("first_success() needs at least one function")
        raise last_error
    finally:
        for future in futures:
            future.cancel()  # only works for those that have not started
        executor.shutdown(wait=False, cancel_futures=True)


def _chunksize(count: int, max_workers: int) -> int:
    """About four chunks per worker: few messages, and still work for every worker."""
    return max(1, count // (4 * max_workers))


def parallel_map(func: Callable[[Any], Any], items: Iterable[Any], max_workers: int = 2) -> list:
    """[func(item) for item in items], computed in `max_workers` processes, in order."""
    items = list(items)
    with ProcessPoolExecutor(max_workers=max_workers) as executor:
        return list(executor.map(func, items, chunksize=_chunksize(len(items), max_workers)))
