"""The API's behaviour without a database: a stand-in session factory that
refuses to be used, so only what happens before storage is exercised."""
from fastapi.testclient import TestClient

from backend.app.api.main import create_app
from backend.app.infrastructure.security.crypto import FieldCipher

import pytest


def unused_session():
    raise AssertionError("the database must not be reached")


@pytest.fixture
def client():
    return TestClient(create_app(unused_session, FieldCipher(FieldCipher.new_key()), api_key="k-123"), base_url="https://testserver")


def test_health_needs_no_key(client):
    assert client.get("/health").json() == {"status": "ok"}


@pytest.mark.security
@pytest.mark.hipaa("164.312(d)")
def test_a_call_without_the_key_is_refused(client):
    assert client.get("/patients/MRN-000001").status_code == 401


@pytest.mark.security
@pytest.mark.hipaa("164.312(d)")
def test_a_wrong_key_is_refused(client):
    assert client.get("/patients/MRN-000001", headers={"X-API-Key": "guess"}).status_code == 401
