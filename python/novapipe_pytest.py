"""novapipe's pytest plugin.

Loaded by novapipe with ``-p novapipe_pytest``. It does two things:

* sends one JSON line per event (collected, start, result, finish, done) to
  the descriptor named by ``NOVAPIPE_EVENTS_FD``, which novapipe reads for
  live progress and to know which test was running when a tier timed out;
* marks tests that passed unexpectedly (XPASS) with the testcase property
  ``novapipe_outcome=xpassed`` in the JUnit XML, where pytest otherwise
  records them as plain passes, so novapipe's counts are exact.

Under pytest-xdist only the controller sends events; workers' reports reach
it through xdist.
"""
import json
import os

import pytest

_out = None


def _send(**event):
    if _out is None:
        return
    try:
        _out.write(json.dumps(event, separators=(",", ":")) + "\n")
    except (OSError, ValueError):
        pass


def pytest_configure(config):
    global _out
    if hasattr(config, "workerinput"):
        return
    fd = os.environ.get("NOVAPIPE_EVENTS_FD")
    if not fd:
        return
    try:
        _out = os.fdopen(int(fd), "w", buffering=1, closefd=False)
    except (OSError, ValueError):
        _out = None


def pytest_collection_finish(session):
    _send(e="collected", n=len(session.items))


def pytest_collectreport(report):
    if report.failed:
        _send(e="result", id=report.nodeid, outcome="error", when="collect")


def pytest_runtest_logstart(nodeid, location):
    _send(e="start", id=nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.passed and hasattr(report, "wasxfail"):
        item.user_properties.append(("novapipe_outcome", "xpassed"))


def _outcome(report):
    xfail = hasattr(report, "wasxfail")
    if report.when == "call":
        if report.passed:
            return "xpassed" if xfail else "passed"
        if report.failed:
            return "failed"
        return "xfailed" if xfail else "skipped"
    if report.failed:
        return "error"
    if report.skipped:
        return "xfailed" if xfail else "skipped"
    return None


def pytest_runtest_logreport(report):
    outcome = _outcome(report)
    if outcome:
        _send(e="result", id=report.nodeid, outcome=outcome, when=report.when)


def pytest_runtest_logfinish(nodeid, location):
    _send(e="finish", id=nodeid)


def pytest_sessionfinish(session, exitstatus):
    _send(e="done", exit=int(exitstatus))
    if _out is not None:
        try:
            _out.flush()
        except (OSError, ValueError):
            pass
