"""novapipe's pytest plugin.

Loaded by novapipe with ``-p novapipe_pytest``. It does two things:

* sends events, one JSON object a line, to the descriptor named by
  ``NOVAPIPE_EVENTS_FD``: ``collected`` (how many tests), ``start`` (a test
  begins) and ``done`` (a test ended, with its outcome); novapipe reads them
  for live progress and to know which test was running when a tier timed out;
* marks tests that passed unexpectedly (XPASS) with the testcase property
  ``novapipe_outcome=xpassed`` in the JUnit XML, where pytest otherwise
  records them as plain passes, so novapipe's counts are exact;
* records each ``@pytest.mark.hipaa("164.312(b)")`` argument as a testcase
  property ``hipaa``, for the compliance report.

Both happen where reports arrive, so under pytest-xdist the controller does
them for every worker. It is kept cheap: events are buffered and written
every 0.1 s by a daemon thread (and at the end), so novapipe wakes up a few
times a second, not twice a test; a test that hangs has its ``start``
delivered within 0.1 s.
"""
import os
import threading
from json.encoder import encode_basestring_ascii as _quote

import pytest

FLUSH_EVERY = 0.1

_fd = None
_xpassed = set()
_outcome = {}
_buffer = []
_lock = threading.Lock()
_stop = threading.Event()

# How bad an outcome is: a test's outcome is the worst of its phases.
_RANK = {"passed": 0, "skipped": 1, "xfailed": 1, "xpassed": 1, "failed": 2, "error": 3}


def _send(text):
    if _fd is not None:
        with _lock:
            _buffer.append(text)


def _flush():
    with _lock:
        if not _buffer:
            return
        data = "".join(_buffer).encode()
        _buffer.clear()
    try:
        while data:
            data = data[os.write(_fd, data):]
    except OSError:
        pass


def _flusher():
    while not _stop.wait(FLUSH_EVERY):
        _flush()


def pytest_configure(config):
    global _fd
    config.addinivalue_line(
        "markers", "hipaa(section): the HIPAA Security Rule safeguard a test covers, e.g. \"164.312(b)\"")
    if hasattr(config, "workerinput"):
        return
    value = os.environ.get("NOVAPIPE_EVENTS_FD")
    if not value:
        return
    try:
        _fd = int(value)
        os.fstat(_fd)
    except (OSError, ValueError):
        _fd = None
        return
    threading.Thread(target=_flusher, name="novapipe-events", daemon=True).start()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    for item in items:
        for mark in item.iter_markers("hipaa"):
            for section in mark.args:
                item.user_properties.append(("hipaa", str(section)))


def pytest_collection_finish(session):
    _send('{"e":"collected","n":%d}\n' % len(session.items))


_xdist_counted = False


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids):
    # Under xdist the controller collects nothing; every worker reports the
    # same list, so the first one gives the count.
    global _xdist_counted
    if not _xdist_counted:
        _xdist_counted = True
        _send('{"e":"collected","n":%d}\n' % len(ids))


def pytest_collectreport(report):
    if report.failed:
        _send('{"e":"done","id":%s,"o":"error"}\n' % _quote(report.nodeid))


def pytest_runtest_logstart(nodeid, location):
    _send('{"e":"start","id":%s}\n' % _quote(nodeid))


def _phase_outcome(report):
    xfail = hasattr(report, "wasxfail")
    if report.passed:
        return ("xpassed" if xfail else "passed") if report.when == "call" else "passed"
    if report.failed:
        return "failed" if report.when == "call" else "error"
    return "xfailed" if xfail else "skipped"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_logreport(report):
    nodeid = report.nodeid
    outcome = _phase_outcome(report)
    if outcome == "xpassed":
        _xpassed.add(nodeid)
    previous = _outcome.get(nodeid)
    if previous is None or _RANK[outcome] > _RANK[previous]:
        _outcome[nodeid] = outcome
    if report.when == "teardown":
        if nodeid in _xpassed:
            # Before the JUnit writer reads this report's properties.
            _xpassed.discard(nodeid)
            report.user_properties.append(("novapipe_outcome", "xpassed"))
        _send('{"e":"done","id":%s,"o":"%s"}\n' % (_quote(nodeid), _outcome.pop(nodeid, "passed")))


def pytest_sessionfinish(session, exitstatus):
    _send('{"e":"end","exit":%d}\n' % int(exitstatus))
    _flush()


def pytest_unconfigure(config):
    if _fd is not None:
        _stop.set()
        _flush()
