"""Progress: a one-line progress bar on stderr for large transfers, shown only on a terminal."""

import shutil
import sys
import time
from typing import Optional, TextIO

PROGRESS_THRESHOLD = 4 * 1024 * 1024  # smaller transfers are over before a bar helps
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def format_size(size: float) -> str:
    for unit in _UNITS:
        if size < 1024 or unit == _UNITS[-1]:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class Progress:
    """
    Counts the bytes of one transfer and draws ``label [####----] 42% 12.0 MiB/28.6 MiB
    3.1 MiB/s`` on one line of ``stream``, redrawn at most every ``interval`` seconds.
    Nothing is drawn when the stream is not a terminal (piped, redirected), or while
    the transfer is at most ``threshold`` bytes (known total) or has not yet passed it
    (unknown total, e.g. stdin).
    """

    def __init__(
        self,
        label: str,
        total: Optional[int] = None,
        stream: Optional[TextIO] = None,
        threshold: int = PROGRESS_THRESHOLD,
        interval: float = 0.1,
    ):
        self.label = label
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.threshold = threshold
        self.interval = interval
        self.done = 0
        self.enabled = is_terminal(self.stream) and (total is None or total > threshold)
        self.shown = False
        self._started = time.monotonic()
        self._drawn_at = 0.0
        self._width = 0

    def update(self, count: int) -> None:
        self.done += count
        if not self.enabled or (self.total is None and self.done <= self.threshold):
            return
        now = time.monotonic()
        if now - self._drawn_at >= self.interval:
            self._draw(now)

    def finish(self) -> None:
        """Draw the final state and end the line (if anything was drawn)."""
        if self.shown:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()
            self.shown = False

    def abandon(self) -> None:
        """End the line after a failure, so an error message starts on its own line."""
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()
            self.shown = False

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.abandon()

    def _draw(self, now: float) -> None:
        self._drawn_at = now
        elapsed = max(now - self._started, 1e-6)
        rate = f"{format_size(self.done / elapsed)}/s"
        columns = shutil.get_terminal_size((80, 24)).columns
        if self.total:
            fraction = min(self.done / self.total, 1.0)
            amounts = f"{fraction * 100:3.0f}% {format_size(self.done)}/{format_size(self.total)} {rate}"
            bar_width = 20 if columns >= 80 else 10
            filled = int(bar_width * fraction)
            bar = "[" + "#" * filled + "-" * (bar_width - filled) + "] "
        else:
            amounts = f"{format_size(self.done)} {rate}"
            bar = ""
        room = max(columns - len(bar) - len(amounts) - 2, 8)
        label = self.label if len(self.label) <= room else "..." + self.label[-(room - 3) :]
        line = f"{label} {bar}{amounts}"[: columns - 1]
        padding = " " * max(self._width - len(line), 0)
        self._width = len(line)
        self.stream.write("\r" + line + padding)
        self.stream.flush()
        self.shown = True
