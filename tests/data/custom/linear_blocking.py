"""tests/test_trajectory.py's entry: the linear layer of linear.py, and a hook for the kill test.

When LLC_TEST_CALL_LOG is set, each call inside a sweep worker process (not at config time, in the
driver) appends a line to that file; the call that would be number LLC_TEST_BLOCK_AT blocks forever on
an event nobody sets, so the test can SIGKILL the trajectory while that job runs.
"""

import multiprocessing
import os
import threading

from linear import make as make_linear  # noqa: F401 - the entry's folder is importable


def make(seed):
    log = os.environ.get("LLC_TEST_CALL_LOG")
    if log and multiprocessing.parent_process() is not None:
        with open(log, "a") as fh:
            fh.write("call\n")
        with open(log) as fh:
            calls = len(fh.read().splitlines())
        if calls == int(os.environ.get("LLC_TEST_BLOCK_AT", "0")):
            threading.Event().wait()
    return make_linear(seed)
