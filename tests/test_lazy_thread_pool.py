import os

from persisty_data.lazy_thread_pool import LazyThreadPool


def test_made_on_first_use_and_kept():
    pool = LazyThreadPool(2, "test-pool")
    assert pool._executor is None
    executor = pool.get()
    assert pool.get() is executor
    assert executor.submit(lambda: 6 * 7).result(timeout=10) == 42


def test_a_forked_child_gets_a_working_pool():
    pool = LazyThreadPool(1, "test-pool")
    parent_executor = pool.get()
    parent_executor.submit(lambda: None).result(timeout=10)  # its thread exists now
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        ok = pool.get() is not parent_executor and pool.get().submit(lambda: 1).result(timeout=10) == 1
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert pool.get() is parent_executor
