"""Progress bars for management commands (replay_webhooks, redeliver_events, reconcile_payments, expire_invoices,
rotate_encryption_keys).

- Only on a terminal: the bar is drawn when the command's stderr is a TTY; in a pipe, a log file or cron nothing of
  it is written, and the command's summary line on stdout says what happened either way.
- Plain: the bar writes to the stream under Django's OutputWrapper, which would colour stderr red on a terminal
  and end every write (each redraw of the bar) with a newline.
- Not broken by log lines: while the bar is drawn, console log handlers write through `tqdm.write`
  (`tqdm.contrib.logging.logging_redirect_tqdm`), which clears the bar, prints the line and redraws the bar;
  `Progress.note` does the same for the command's own messages.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import IO

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm


def raw_stream(stream: IO[str]) -> IO[str]:
    """The stream under a Django OutputWrapper (`BaseCommand.stdout`/`stderr`), or `stream` itself."""
    return getattr(stream, "_out", stream)


def is_terminal(stream: IO[str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Progress:
    def __init__(self, bar: tqdm, out: IO[str]) -> None:
        self.bar = bar
        self.out = out

    def update(self, n: int = 1) -> None:
        self.bar.update(n)

    def note(self, text: str) -> None:
        """A line for the person running the command (on the bar's stream, above the bar; plain)."""
        tqdm.write(text, file=self.out)


@contextmanager
def progress(stream: IO[str], *, total: int | None, desc: str, unit: str) -> Iterator[Progress]:
    """A progress bar on `stream` (a command's `self.stderr`), drawn only if it is a terminal."""
    out = raw_stream(stream)
    shown = is_terminal(out)
    with tqdm(total=total, desc=desc, unit=unit, file=out, disable=not shown, dynamic_ncols=True) as bar:
        with logging_redirect_tqdm() if shown else nullcontext():
            yield Progress(bar, out)
