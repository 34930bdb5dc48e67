import pytest
from fastapi.testclient import TestClient

from backend.app.api.main import create_app

KEY = {"X-API-Key": "k-123"}


@pytest.fixture
def client(sessions, cipher):
    return TestClient(create_app(sessions, cipher, api_key="k-123"), base_url="https://testserver")


def test_create_then_read_a_patient(client):
    created = client.post("/patients", json={"mrn": "MRN-000200", "name": "Synthetic Person",
                                             "birth_date": "1900-02-03"}, headers=KEY)
    assert created.status_code == 201
    assert created.json() == {"mrn": "MRN-****00"}
    read = client.get("/patients/MRN-000200", headers=KEY)
    assert read.json() == {"mrn": "MRN-****00", "name": "Synthetic Person", "birth_year": 1900}


def test_an_invalid_record_is_refused(client):
    assert client.post("/patients", json={"mrn": "42", "name": "X", "birth_date": "1900-01-01"},
                       headers=KEY).status_code == 422


@pytest.mark.security
@pytest.mark.hipaa("164.312(a)(1)")
def test_an_unknown_patient_is_not_found(client):
    assert client.get("/patients/MRN-099999", headers=KEY).status_code == 404
