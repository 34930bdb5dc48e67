"""Tables. Names and dates of birth are stored encrypted."""
from sqlalchemy import Column, Integer, String, Text
from sqlalchemy.orm import declarative_base

Base = declarative_base()


class PatientRecord(Base):
    __tablename__ = "patients"
    id = Column(Integer, primary_key=True)
    mrn = Column(String(16), unique=True, nullable=False)
    name_encrypted = Column(Text, nullable=False)
    birth_date_encrypted = Column(Text, nullable=False)


class AuditEvent(Base):
    __tablename__ = "audit_events"
    id = Column(Integer, primary_key=True)
    actor = Column(String(64), nullable=False)
    action = Column(String(32), nullable=False)
    subject = Column(String(64), nullable=False)
    digest = Column(String(64), nullable=False)
