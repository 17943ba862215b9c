"""Stopping a run by hand (Ctrl-C, SIGTERM) at a step boundary, so the checkpoint it saves resumes exactly."""
import signal
import threading

from absl import logging

from replica.errors import UserError


class Interrupted(UserError):
    """Ctrl-C or SIGTERM: the run saved a checkpoint at the step it had reached and stopped."""


class StopRequest:
    """Ctrl-C (SIGINT) or SIGTERM during training asks the loop to stop after the current step, at a point where the
    weights, the step counters and the data position agree (a KeyboardInterrupt raised between the weight update
    and the counter update would checkpoint a step as not yet taken). A second signal stops at once, without
    saving. Truthy once a stop was asked for."""

    def __init__(self):
        self.signals, self.forced = [], False
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}

    def _handle(self, signum, frame):
        if self.signals:
            self.forced = True
            raise KeyboardInterrupt
        self.signals.append(signum)
        logging.warning("stopping after this step (Ctrl-C again stops at once, without saving)")

    def __bool__(self):
        return bool(self.signals)

    def restore(self):
        for s, handler in self.previous.items():
            signal.signal(s, handler)
