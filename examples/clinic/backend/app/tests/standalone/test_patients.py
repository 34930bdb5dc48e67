import pytest

from backend.app.domain.patients import Patient, mask_mrn


def test_valid_patient():
    p = Patient(mrn="MRN-000042", name="Test Patient", birth_year=1980)
    assert p.mrn == "MRN-000042"


def test_invalid_mrn_is_rejected():
    with pytest.raises(ValueError):
        Patient(mrn="42", name="Test Patient", birth_year=1980)


def test_mask_keeps_last_two_digits():
    assert mask_mrn("MRN-000042") == "MRN-****42"
