"""Transmission security: the API over plain HTTP and over HTTPS, without
a database (the session factory refuses to be used)."""
from fastapi.testclient import TestClient

from backend.app.api.main import create_app
from backend.app.infrastructure.security.crypto import FieldCipher

import pytest


def unused_session():
    raise AssertionError("the database must not be reached")


def app(**kw):
    return create_app(unused_session, FieldCipher(FieldCipher.new_key()), api_key="k-123", **kw)


@pytest.mark.security
@pytest.mark.hipaa("164.312(e)(1)")
def test_plain_http_is_refused_before_the_key_is_read():
    response = TestClient(app(), base_url="http://testserver").get("/patients/MRN-000001",
                                                                    headers={"X-API-Key": "k-123"})
    assert response.status_code == 403
    assert response.json() == {"detail": "HTTPS is required"}


@pytest.mark.security
@pytest.mark.hipaa("164.312(e)(2)(ii)")
def test_https_responses_keep_browsers_on_https():
    response = TestClient(app(), base_url="https://testserver").get("/health")
    assert response.status_code == 200
    assert response.headers["strict-transport-security"] == "max-age=63072000; includeSubDomains"


@pytest.mark.security
@pytest.mark.hipaa("164.312(e)(1)")
def test_a_trusted_proxy_says_the_client_used_https():
    client = TestClient(app(trust_forwarded_proto=True), base_url="http://testserver")
    assert client.get("/health", headers={"X-Forwarded-Proto": "https"}).status_code == 200
    assert client.get("/health", headers={"X-Forwarded-Proto": "http"}).status_code == 403
    # without trust, the header is the client's word and counts for nothing
    assert TestClient(app(), base_url="http://testserver").get(
        "/health", headers={"X-Forwarded-Proto": "https"}).status_code == 403


@pytest.mark.security
@pytest.mark.hipaa("164.312(e)(1)")
def test_the_application_still_starts_and_stops_through_it():
    # lifespan events are not HTTP: they pass through untouched
    with TestClient(app(), base_url="https://testserver") as client:
        assert client.get("/health").headers["strict-transport-security"]
