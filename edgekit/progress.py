"""Progress of a long command, stage by stage (import, calibration, planning, kernels, compile and
link, QEMU inference i/N), on stderr so that stdout stays clean for tables and --json.

On a terminal each stage is a rich progress bar that stays on screen when it ends (with its time);
anywhere else (a pipe, a CI log) each stage is a few plain lines: ``edgekit: calibration...`` when it
starts, ``edgekit: calibration 7/13`` at most every few seconds while it counts, and
``edgekit: calibration done (13/13, 4.2 s)`` when it ends. Code that does the work only calls
``stages.stage(name, total)`` and the ``advance`` it yields; ``QUIET`` does nothing (--json, the API).
"""

import contextlib
import sys
import threading
import time

PLAIN_INTERVAL_S = 5.0  # at most one count line per stage this often in plain mode


class Stages:
    """Reports stages; ``stage`` is a context manager yielding ``advance(count=1)``."""

    def __init__(self, stream=None, terminal: bool | None = None):
        self.stream = stream or sys.stderr
        self.terminal = self.stream.isatty() if terminal is None else terminal
        self._bars = None

    def __enter__(self):
        if self.terminal:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                                       TimeElapsedColumn)

            self._bars = Progress(SpinnerColumn(finished_text="[green]done"), TextColumn("{task.description:<20}"),
                                  BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                  console=Console(file=self.stream, force_terminal=True))
            self._bars.start()
        return self

    def __exit__(self, *exc):
        if self._bars is not None:
            self._bars.stop()
            self._bars = None

    @contextlib.contextmanager
    def stage(self, name: str, total: int | None = None):
        if self._bars is not None:
            yield from self._bar_stage(name, total)
        else:
            yield from self._plain_stage(name, total)

    def _bar_stage(self, name, total):
        bars = self._bars
        task = bars.add_task(name, total=total)
        yield lambda count=1: bars.advance(task, count)
        done = bars.tasks[-1].completed if total is None else total
        bars.update(task, total=max(done, 1), completed=max(done, 1))
        bars.stop_task(task)

    def _plain_stage(self, name, total):
        started = last = time.monotonic()
        done = 0
        self._line(f"{name}..." if total is None else f"{name} 0/{total}")

        def advance(count: int = 1):
            nonlocal done, last
            done += count
            now = time.monotonic()
            if now - last >= PLAIN_INTERVAL_S and (total is None or done < total):
                last = now
                self._line(f"{name} {done}/{total}" if total is not None else f"{name} {done}")

        yield advance
        counted = f"{done}/{total}, " if total is not None else (f"{done}, " if done else "")
        self._line(f"{name} done ({counted}{time.monotonic() - started:.1f} s)")

    def _line(self, text: str) -> None:
        print(f"edgekit: {text}", file=self.stream, flush=True)


@contextlib.contextmanager
def counting(advance, count, interval_s: float = 0.5):
    """While the block runs (a blocking tool: make, QEMU), call ``count()`` every ``interval_s`` and
    pass what it grew by to ``advance``, from a background thread; a final count when the block ends."""
    stop = threading.Event()
    seen = 0

    def update():
        nonlocal seen
        now = count()
        if now > seen:
            advance(now - seen)
            seen = now

    def poll():
        while not stop.wait(interval_s):
            update()

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
    update()


class _Quiet(Stages):
    """Reports nothing (``--json``, and calls through the Python API)."""

    def __init__(self):
        super().__init__(stream=sys.stderr, terminal=False)

    @contextlib.contextmanager
    def stage(self, name: str, total: int | None = None):
        yield lambda count=1: None


QUIET = _Quiet()
