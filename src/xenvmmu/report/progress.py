"""The sweep's progress bar, on stderr.

On a terminal it is one line redrawn in place (at most 10 times a second); in a log (not a
terminal) it is a plain line every 10 % of the points, so logs stay short. No dependency:
tqdm would do the same, for one more package.
"""

from __future__ import annotations

import time
from typing import TextIO

WIDTH = 30


class ProgressBar:
    """``total`` points of which ``skipped`` were already done before this run."""

    def __init__(self, stream: TextIO, total: int, skipped: int = 0,
                 enabled: bool = True) -> None:
        self.stream = stream
        self.total = total
        self.skipped = skipped
        self.done = 0
        self.failed = 0
        self.start = time.monotonic()
        self.enabled = enabled
        self.tty = enabled and _isatty(stream)
        self._last_draw = 0.0
        self._last_tenth = -1

    @property
    def todo(self) -> int:
        return self.total - self.skipped

    def advance(self, failed: bool = False) -> None:
        self.done += 1
        self.failed += failed
        self._draw(final=self.done >= self.todo)

    def _draw(self, final: bool = False) -> None:
        if not self.enabled or self.todo <= 0:
            return
        now = time.monotonic()
        elapsed = now - self.start
        if self.tty:
            if not final and now - self._last_draw < 0.1:
                return
            self._last_draw = now
            filled = WIDTH * self.done // self.todo
            eta = elapsed / self.done * (self.todo - self.done) if self.done else 0.0
            text = (f"\rsweep [{'#' * filled}{'.' * (WIDTH - filled)}] "
                    f"{self.done}/{self.todo} points, {elapsed:5.1f} s, eta {eta:5.1f} s")
            if self.failed:
                text += f", {self.failed} failed"
            self.stream.write(text)
            if final:
                self.stream.write("\n")
        else:
            tenth = 10 * self.done // self.todo
            if tenth == self._last_tenth and not final:
                return
            if final and tenth == self._last_tenth:
                return
            self._last_tenth = tenth
            self.stream.write(f"sweep: {self.done}/{self.todo} points ({10 * tenth} %), "
                              f"{elapsed:.1f} s\n")
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line if the run stopped early."""
        if self.tty and self.enabled and 0 < self.done < self.todo:
            self.stream.write("\n")
            self.stream.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
