"""Patients in the database, PHI encrypted, every access audited."""
from typing import Optional

from sqlalchemy import select

from backend.app.domain.patients import Patient
from backend.app.infrastructure.persistence.models import AuditEvent, PatientRecord
from backend.app.infrastructure.security.audit import AuditTrail
from backend.app.infrastructure.security.crypto import FieldCipher


class PatientRepository:
    def __init__(self, session, cipher: FieldCipher, actor: str):
        self.session = session
        self.cipher = cipher
        self.actor = actor
        self.trail = AuditTrail()

    def _audit(self, action: str, mrn: str) -> None:
        entry = self.trail.append(self.actor, action, mrn)
        self.session.add(AuditEvent(actor=entry.actor, action=entry.action, subject=entry.subject,
                                    digest=entry.digest))

    def add(self, patient: Patient, birth_date: str) -> None:
        self.session.add(PatientRecord(
            mrn=patient.mrn,
            name_encrypted=self.cipher.encrypt(patient.name),
            birth_date_encrypted=self.cipher.encrypt(birth_date),
        ))
        self._audit("create", patient.mrn)
        self.session.commit()

    def get(self, mrn: str) -> Optional[Patient]:
        row = self.session.execute(select(PatientRecord).where(PatientRecord.mrn == mrn)).scalar_one_or_none()
        self._audit("read", mrn)
        self.session.commit()
        if row is None:
            return None
        birth_year = int(self.cipher.decrypt(row.birth_date_encrypted)[:4])
        return Patient(mrn=row.mrn, name=self.cipher.decrypt(row.name_encrypted), birth_year=birth_year)
