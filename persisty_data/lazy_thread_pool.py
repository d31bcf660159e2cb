"""LazyThreadPool: a ThreadPoolExecutor made on first use, and made again after a fork."""

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Optional


class LazyThreadPool:
    """
    Holds a ThreadPoolExecutor that exists only once something is submitted. A child
    process forked after the pool was made inherits it without its threads (work sent
    there would never run), so the pool is rebuilt in the child.
    """

    def __init__(self, max_workers: int, thread_name_prefix: str):
        self.max_workers = max_workers
        self.thread_name_prefix = thread_name_prefix
        self._executor: Optional[ThreadPoolExecutor] = None
        self._pid = 0
        self._lock = threading.Lock()

    def get(self) -> ThreadPoolExecutor:
        pid = os.getpid()
        executor = self._executor
        if executor is None or self._pid != pid:
            with self._lock:
                executor = self._executor
                if executor is None or self._pid != pid:
                    executor = ThreadPoolExecutor(self.max_workers, thread_name_prefix=self.thread_name_prefix)
                    self._executor, self._pid = executor, pid
        return executor
