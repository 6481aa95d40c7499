"""What a run on Ray shows on the terminal: our stage lines, progress bars and results; Ray's and
Tune's own output goes to a log file instead (``--verbose`` brings it back).

Left alone, Ray forwards every worker's output to the driver, prefixed ``(RayTrainWorker
pid=...)`` and coloured, the driver's ``ray`` logger reports the cluster's start and internals,
and Tune prints its configuration and trial tables. Quiet (the default),
:func:`depthhints.train.trainer.init_ray` starts Ray with ``log_to_driver=False`` (worker output
stays in Ray's session folder, which the log file names) and sends the ``ray`` logger to the
log file (:func:`log_ray_to`); :func:`tune_output` sends Tune's reporting there too. Rank 0's
progress bar and lines, which ``ray.experimental.tqdm_ray`` carries in the forwarded output, go
through a :class:`ProgressBoard` actor instead, which the driver draws with tqdm
(:func:`show_progress`).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import ray
from tqdm import tqdm

BOARD = "depthhints-progress"
"""The progress board's actor name, in the driver's Ray namespace."""
POLL_S = 0.5
"""How often the driver draws the board, and at most how often a bar posts its count."""
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_log_file: Path | None = None  # where init_ray sends Ray's output (None: not set up)
_log_handler: logging.Handler | None = None
_drawing = threading.Event()  # a show_progress block is open in this process


# ----------------------------------------------------------------------------- the log file
def log_ray_to(path: Path) -> Path:
    """Send the driver's ``ray`` logger (and Tune's reporting, :func:`tune_output`) to ``path``
    (appended to) instead of the terminal; returns the absolute path."""
    global _log_file, _log_handler
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger("ray")
    if _log_handler is not None:
        logger.removeHandler(_log_handler)
        _log_handler.close()
    for handler in list(logger.handlers):  # Ray's own, to stderr
        logger.removeHandler(handler)
    _log_handler = logging.FileHandler(path, encoding="utf-8")
    _log_handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger.addHandler(_log_handler)
    logger.propagate = False
    _log_file = path
    return path


def note_session(path: Path, session_dir: str | None) -> None:
    """Name Ray's session folder, where the workers' own output stays, in the log file."""
    if session_dir:
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"Ray session {session_dir}: every worker's output is in its logs/\n")


def ray_log_file() -> Path | None:
    """The log file :func:`log_ray_to` set up in this process (None if none)."""
    return _log_file


@contextlib.contextmanager
def tune_output(verbose: bool, fallback: Path) -> Iterator[None]:
    """Tune's own reporting (configuration, trial tables, the TensorBoard hint: printed by the
    driver as the sweep runs) goes to the Ray log file, or ``fallback`` when Ray's output was
    not set up (Ray started elsewhere), while the block runs; on the terminal if ``verbose``.

    Our lines keep the terminal: :func:`show_progress`, entered first, holds on to it.
    """
    if verbose:
        yield
        return
    path = _log_file
    if path is None:
        path = Path(fallback).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"Ray Tune's own output: {path}")
    with open(path, "a", encoding="utf-8") as log, contextlib.redirect_stdout(log):
        yield


# ----------------------------------------------------------------------------- the board
@ray.remote(num_cpus=0)
class ProgressBoard:
    """The progress of one driver's runs: bar states and lines that workers post, drained by
    the driver."""

    def __init__(self) -> None:
        self._bars: dict[str, dict[str, Any]] = {}
        self._lines: list[str] = []

    def post(self, key: str, state: dict[str, Any]) -> None:
        self._bars[key] = state

    def write(self, line: str) -> None:
        self._lines.append(line)

    def drain(self) -> tuple[dict[str, dict[str, Any]], list[str]]:
        """The bars changed and the lines written since the last call."""
        bars, lines = self._bars, self._lines
        self._bars, self._lines = {}, []
        return bars, lines


def board() -> Any | None:
    """The driver's progress board; None when there is none (``verbose``: Ray forwards the
    workers' output, tqdm_ray bars included, or no driver draws one)."""
    try:
        return ray.get_actor(BOARD)
    except ValueError:
        return None


def say(line: str, where: Any | None = None) -> None:
    """Print ``line`` on the driver's terminal from any process of a run: through the board
    ``where`` (default: the driver's, if any), else with ``print``."""
    where = where if where is not None else board()
    if where is not None:
        with contextlib.suppress(ray.exceptions.RayError):  # the board is gone: print it
            ray.get(where.write.remote(line))
            return
    print(line, flush=True)


class BoardBar:
    """Rank 0's progress bar, drawn by the driver from the board: tqdm's ``update``,
    ``set_description`` and ``close``. Counts are posted at most every ``POLL_S``; the
    description and the end are posted at once and waited for, so the driver has them when the
    run returns."""

    def __init__(self, where: Any, name: str, total: int, initial: int) -> None:
        self._board = where
        self._key = f"{name}/{uuid.uuid4().hex[:8]}"
        self._name = name
        self._state = {
            "desc": name,
            "total": total,
            "n": initial,
            "initial": initial,  # the steps done before (a resumed run)
            "start": time.time(),  # the driver may first see the bar late: time it from here
            "closed": False,
        }
        self._posted = 0.0
        self._post(wait=True)

    def update(self, n: int = 1) -> None:
        self._state["n"] += n
        if time.monotonic() - self._posted >= POLL_S:
            self._post()

    def set_description(self, desc: str) -> None:
        self._state["desc"] = f"{self._name} {desc}"
        self._post(wait=True)

    def close(self) -> None:
        if not self._state["closed"]:
            self._state["closed"] = True
            self._post(wait=True)

    def _post(self, wait: bool = False) -> None:
        if self._board is None:
            return
        self._posted = time.monotonic()
        try:
            posted = self._board.post.remote(self._key, dict(self._state))
            if wait:
                ray.get(posted)
        except ray.exceptions.RayError:  # the driver is gone: training goes on without a bar
            self._board = None


@contextlib.contextmanager
def show_progress(enabled: bool = True) -> Iterator[None]:
    """While the block runs, draw the board's bars (tqdm, on stderr) and lines (stdout) as
    workers post them. Nothing when not ``enabled`` (``verbose``), inside a Ray actor (a Tune
    trial: its driver draws) or inside another such block."""
    inside_actor = ray.get_runtime_context().get_actor_id() is not None
    if not enabled or inside_actor or _drawing.is_set():
        yield
        return
    where = ProgressBoard.options(name=BOARD, get_if_exists=True).remote()
    view = _BoardView(where, sys.stdout, sys.stderr)
    thread = threading.Thread(target=view.run, name="depthhints-progress", daemon=True)
    _drawing.set()
    thread.start()
    try:
        yield
    finally:
        view.stop.set()
        thread.join()
        view.close()
        _drawing.clear()
        ray.kill(where)


class _BoardView:
    """The driver's side of the board: one tqdm bar per posted bar, lines printed above them."""

    def __init__(self, where: Any, out: TextIO, err: TextIO) -> None:
        self.board = where
        self.out, self.err = out, err
        self.tty = bool(getattr(err, "isatty", lambda: False)())
        self.bars: dict[str, tqdm] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(POLL_S):
            self.draw()

    def draw(self) -> None:
        try:
            bars, lines = ray.get(self.board.drain.remote(), timeout=30)
        except (ray.exceptions.RayError, TimeoutError):  # the board is gone: nothing to draw
            return
        for line in lines:
            tqdm.write(line, file=self.out)
        self.out.flush()
        for key, state in bars.items():
            self._show(key, state)

    def _show(self, key: str, state: dict[str, Any]) -> None:
        bar = self.bars.get(key)
        if bar is None:
            bar = self.bars[key] = tqdm(
                total=state["total"],
                initial=state["initial"],
                desc=state["desc"],
                unit="step",
                file=self.err,
                dynamic_ncols=True,
                mininterval=POLL_S if self.tty else 10.0,
                position=None if self.tty else 0,  # below each other: cursor moves
            )
            # elapsed time and rate from when the worker's bar started, not from now
            bar.start_t = bar.last_print_t = min(state["start"], bar.start_t)
        bar.set_description(state["desc"], refresh=False)
        bar.update(state["n"] - bar.n)
        if state["closed"]:
            bar.close()
            del self.bars[key]

    def close(self) -> None:
        self.draw()
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()
