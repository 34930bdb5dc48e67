import pytest
from sqlalchemy import text

from backend.app.domain.patients import Patient
from backend.app.infrastructure.persistence.repository import PatientRepository


def test_a_patient_is_stored_and_read_back(sessions, cipher):
    repo = PatientRepository(sessions(), cipher, actor="dr-a")
    repo.add(Patient(mrn="MRN-000100", name="Synthetic Person", birth_year=1900), "1900-06-01")
    assert repo.get("MRN-000100") == Patient(mrn="MRN-000100", name="Synthetic Person", birth_year=1900)


@pytest.mark.security
@pytest.mark.hipaa("164.312(a)(2)(iv)")
def test_phi_is_encrypted_at_rest(sessions, cipher, engine):
    PatientRepository(sessions(), cipher, actor="dr-a").add(
        Patient(mrn="MRN-000101", name="Synthetic Person", birth_year=1900), "1900-06-01")
    with engine.connect() as conn:
        name, dob = conn.execute(text("select name_encrypted, birth_date_encrypted from patients")).one()
    assert "Synthetic" not in name and "1900" not in dob


@pytest.mark.security
@pytest.mark.hipaa("164.312(b)")
def test_every_access_is_audited(sessions, cipher, engine):
    repo = PatientRepository(sessions(), cipher, actor="dr-a")
    repo.add(Patient(mrn="MRN-000102", name="Synthetic Person", birth_year=1900), "1900-06-01")
    repo.get("MRN-000102")
    with engine.connect() as conn:
        actions = [r[0] for r in conn.execute(text("select action from audit_events order by id"))]
    assert actions == ["create", "read"]
    assert repo.trail.verify()


def test_the_database_is_postgresql(engine):
    with engine.connect() as conn:
        assert conn.execute(text("select version()")).scalar().startswith("PostgreSQL")
