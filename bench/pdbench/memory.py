"""Peak RSS growth of this process over a block of code (Linux: VmHWM reset; else sampling)."""

import os
import re
import threading
import time
from contextlib import contextmanager

_STATUS = "/proc/self/status"


def _status_kib(field: str) -> int:
    with open(_STATUS) as file:
        match = re.search(rf"^{field}:\s+(\d+) kB", file.read(), re.MULTILINE)
    return int(match.group(1)) if match else 0


def _can_reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as file:
            file.write("5")
        return _status_kib("VmHWM") > 0
    except OSError:
        return False


_RESET = _can_reset_peak()


class PeakRss:
    growth_bytes = 0
    method = ""


@contextmanager
def peak_rss_growth():
    """Yields a PeakRss whose growth_bytes is set on exit: peak RSS minus RSS at entry."""
    result = PeakRss()
    if _RESET:
        with open("/proc/self/clear_refs", "w") as file:
            file.write("5")  # VmHWM := current RSS
        start = _status_kib("VmRSS")
        result.method = "VmHWM"
        try:
            yield result
        finally:
            result.growth_bytes = max(0, _status_kib("VmHWM") - start) * 1024
        return
    import psutil  # sampling fallback

    process = psutil.Process(os.getpid())
    start = process.memory_info().rss
    peak = [start]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.002)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    result.method = "psutil sampling"
    try:
        yield result
    finally:
        stop.set()
        thread.join()
        peak[0] = max(peak[0], process.memory_info().rss)
        result.growth_bytes = max(0, peak[0] - start)
