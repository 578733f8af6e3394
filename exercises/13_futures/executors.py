"""Topic 13: concurrent.futures. Executors run callables; futures follow each one."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from typing import Any


def fetch_all(urls: Iterable[str], fetch: Callable[[str], Any], max_workers: int = 8) -> dict:
    """{url: fetch(url)} for every url, fetched by up to `max_workers` threads at once; a
    url whose fetch raised maps to the exception instead."""
    # TODO: submit fetch(url) for every url to a ThreadPoolExecutor(max_workers=max_workers),
    #       remember which future belongs to which url, and take the futures from
    #       as_completed(...) as they finish. future.exception() tells a failed fetch: map its
    #       url to the exception, so that one bad url does not lose the other results.
    raise NotImplementedError("fetch_all")


def first_success(funcs: Iterable[Callable[[], Any]], max_workers: int = 4, timeout: float | None = None) -> Any:
    """The result of whichever function succeeds first.  Functions that have not started
    by then are cancelled; the ones still running are not waited for.  If every function
    failed, the last failure is raised; TimeoutError if none succeeded within `timeout`."""
    with ThreadPoolExecutor(max_workers=max_workers) as executor:
        futures = [executor.submit(func) for func in funcs]
        last_error: BaseException | None = None
        # TODO: this waits for the futures in the order they were submitted, for ever: take
        #       them from as_completed(futures, timeout=timeout) instead, as they finish.
        for future in futures:
            error = future.exception()
            if error is None:
                return future.result()
            last_error = error
        if last_error is None:
            raise ValueError("first_success() needs at least one function")
        raise last_error
    # TODO: leaving the `with` block waits for every function, even those not started yet.
    #       Create the executor without `with`, and in a `finally:` cancel the futures and
    #       call executor.shutdown(wait=False, cancel_futures=True).


def _chunksize(count: int, max_workers: int) -> int:
    """About four chunks per worker: few messages, and still work for every worker."""
    return max(1, count // (4 * max_workers))


def parallel_map(func: Callable[[Any], Any], items: Iterable[Any], max_workers: int = 2) -> list:
    """[func(item) for item in items], computed in `max_workers` processes, in order."""
    items = list(items)
    # TODO: threads take turns on the GIL, so CPU-bound work is no faster in them. Use a
    #       ProcessPoolExecutor, and pass chunksize=_chunksize(len(items), max_workers) to map.
    with ThreadPoolExecutor(max_workers=max_workers) as executor:
        return list(executor.map(func, items))
