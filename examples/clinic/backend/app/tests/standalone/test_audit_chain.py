import dataclasses

import pytest

from backend.app.infrastructure.security.audit import AuditTrail


@pytest.mark.security
@pytest.mark.hipaa("164.312(b)")
def test_an_untouched_trail_verifies():
    trail = AuditTrail()
    trail.append("dr-a", "read", "MRN-000001")
    trail.append("dr-b", "update", "MRN-000001")
    assert trail.verify()


@pytest.mark.security
@pytest.mark.hipaa("164.312(c)(2)")
def test_editing_an_earlier_entry_is_detected():
    trail = AuditTrail()
    trail.append("dr-a", "read", "MRN-000001")
    trail.append("dr-b", "update", "MRN-000001")
    trail.entries[0] = dataclasses.replace(trail.entries[0], actor="intruder")
    assert not trail.verify()


@pytest.mark.security
@pytest.mark.hipaa("164.312(c)(2)")
def test_removing_an_entry_is_detected():
    trail = AuditTrail()
    for action in ("read", "update", "read"):
        trail.append("dr-a", action, "MRN-000001")
    del trail.entries[1]
    assert not trail.verify()
