import pytest

from backend.app.domain.twin import DigitalTwin, Vitals


def test_a_twin_without_readings_has_no_risk():
    assert DigitalTwin(mrn="MRN-000001").risk_score() == 0


def test_fever_and_tachycardia_raise_the_score():
    twin = DigitalTwin(mrn="MRN-000001")
    for _ in range(5):
        twin.record(Vitals(heart_rate=125, systolic=150, diastolic=90, temperature_c=39.2))
    assert twin.risk_score() == 5


def test_implausible_heart_rate_is_rejected():
    with pytest.raises(ValueError):
        DigitalTwin(mrn="MRN-000001").record(Vitals(heart_rate=400, systolic=120, diastolic=80, temperature_c=37))
