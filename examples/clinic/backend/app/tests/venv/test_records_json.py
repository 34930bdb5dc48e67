import json

from backend.app.domain.patients import Patient


def test_patient_round_trips_through_json():
    p = Patient(mrn="MRN-000007", name="Synthetic Person", birth_year=1990)
    data = json.loads(json.dumps(p.__dict__))
    assert Patient(**data) == p
