import sqlite3

from backend.app.domain.patients import Patient


def test_patient_stored_and_read_back(tmp_path):
    db = sqlite3.connect(tmp_path / "clinic.db")
    db.execute("create table patients (mrn text primary key, name text, birth_year int)")
    p = Patient(mrn="MRN-000100", name="Synthetic Person", birth_year=1975)
    db.execute("insert into patients values (?, ?, ?)", (p.mrn, p.name, p.birth_year))
    row = db.execute("select mrn, name, birth_year from patients").fetchone()
    assert Patient(*row) == p
