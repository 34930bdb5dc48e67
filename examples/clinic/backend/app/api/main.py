"""The HTTP API, over HTTPS only. Every call but /health needs the API key
(access control)."""
import hmac

from fastapi import Depends, FastAPI, Header, HTTPException
from pydantic import BaseModel

from backend.app.domain.patients import Patient, mask_mrn
from backend.app.infrastructure.persistence.repository import PatientRepository
from backend.app.infrastructure.security.transport import RequireHTTPS


class PatientIn(BaseModel):
    mrn: str
    name: str
    birth_date: str


def create_app(session_factory, cipher, api_key: str, trust_forwarded_proto: bool = False) -> FastAPI:
    app = FastAPI(title="clinic")
    app.add_middleware(RequireHTTPS, trust_forwarded_proto=trust_forwarded_proto)

    def authorised(x_api_key: str = Header(default="")) -> str:
        if not hmac.compare_digest(x_api_key.encode(), api_key.encode()):
            raise HTTPException(status_code=401, detail="invalid API key")
        return "api-client"

    def repository(actor: str = Depends(authorised)):
        session = session_factory()
        try:
            yield PatientRepository(session, cipher, actor)
        finally:
            session.close()

    @app.get("/health")
    def health():
        return {"status": "ok"}

    @app.post("/patients", status_code=201)
    def create(body: PatientIn, repo: PatientRepository = Depends(repository)):
        try:
            patient = Patient(mrn=body.mrn, name=body.name, birth_year=int(body.birth_date[:4]))
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from exc
        repo.add(patient, body.birth_date)
        return {"mrn": mask_mrn(patient.mrn)}

    @app.get("/patients/{mrn}")
    def read(mrn: str, repo: PatientRepository = Depends(repository)):
        patient = repo.get(mrn)
        if patient is None:
            raise HTTPException(status_code=404, detail="no such patient")
        return {"mrn": mask_mrn(patient.mrn), "name": patient.name, "birth_year": patient.birth_year}

    return app
