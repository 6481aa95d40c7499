"""Every failure that Ray Train answers with a restart, recorded with its cause.

Ray Train restarts a worker group whose worker raised or died, from the latest checkpoint, up to
``max_failures`` times, and says little about why. :class:`RestartRecorder`, a Train callback
run by the Train controller, writes one line per failure to ``<run_dir>/restarts.log``, shows
it on the driver's terminal, and logs it to the run's MLflow run: the metric ``train/restarts``
(the count so far, at the last reported step) and the tag ``last_restart_cause``.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from ray.train import UserCallback

from depthhints.config import TrainConfig
from depthhints.errors import first_sentence
from depthhints.tracking import Tracker
from depthhints.train import console
from depthhints.train.reporting import TrackingOptions

RESTARTS_LOG = "restarts.log"

_EXIT = re.compile(r"Worker exit type: (?P<type>\S+)(?: Worker exit detail: (?P<detail>.*))?")


def failure_cause(error: BaseException) -> str:
    """One line saying why a Train worker failed: Ray's exit type and detail for a worker
    process that died (a signal, the kernel's or Ray's memory monitor's OOM kill, a lost node),
    the health check's verdict for one that hung, the last line of the error for one that
    raised."""
    failure = getattr(error, "health_check_failure", None) or error  # a died worker's, wrapped
    text = str(failure)
    exit_ = _EXIT.search(text)
    if exit_:
        detail = first_sentence(exit_["detail"] or "")
        return f"worker process died ({exit_['type']}{': ' + detail if detail else ''})"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if type(failure).__name__ == "WorkerHealthCheckTimeoutError":
        return f"worker stopped answering: {lines[0] if lines else 'health check timed out'}"
    return lines[-1] if lines else type(failure).__name__


class RestartRecorder(UserCallback):
    """Records each failure the Train controller sees (``after_exception``) with its cause;
    the ``max_failures`` first are restarts, the one after ends the run."""

    def __init__(
        self, config: TrainConfig, tracking: TrackingOptions | None, max_failures: int
    ) -> None:
        self.config = config
        self.tracking = tracking
        self.max_failures = max_failures
        self.failures = 0
        self.step: int | None = None  # the last reported step

    def after_report(self, run_context: Any, metrics: list[dict], checkpoint: Any) -> None:
        step = (metrics[0] if metrics else {}).get("step")
        self.step = step if isinstance(step, int) else self.step

    def after_exception(self, run_context: Any, worker_exceptions: dict[int, Exception]) -> None:
        self.failures += 1
        causes = "; ".join(
            f"rank {rank}: {failure_cause(error)}"
            for rank, error in sorted(worker_exceptions.items())
        )
        after = f"after step {self.step}" if self.step is not None else "before the first step"
        if self.failures <= self.max_failures:
            what = f"restart {self.failures} of at most {self.max_failures} ({after})"
        else:
            what = f"failure {self.failures} ({after}), over max_failures: the run ends"
        line = f"{self.config.model_name}: {what}: {causes}"
        self._record(line, causes)

    def _record(self, line: str, causes: str) -> None:
        log = Path(self.config.run_dir) / RESTARTS_LOG
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a", encoding="utf-8") as file:
            file.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}\n")
        console.say(line)
        if self.tracking is not None and self.tracking.enabled:
            tracker = Tracker.start(  # its own journal folder: rank 0 writes the run folder's
                self.tracking.tracking_uri(self.config),
                self.tracking.experiment,
                run_id=self.tracking.run_id,
                fallback_dir=Path(self.config.run_dir) / "controller",
            )
            tracker.log_metrics({"train/restarts": self.failures}, step=self.step or 0)
            tracker.set_tags({"last_restart_cause": causes[:5000]})
            tracker.flush()
