import pytest
from sqlalchemy import text

from backend.app.infrastructure.persistence.database import engine_from_env, session_factory
from backend.app.infrastructure.persistence.models import Base
from backend.app.infrastructure.security.crypto import FieldCipher


@pytest.fixture(scope="session")
def engine():
    engine = engine_from_env()
    Base.metadata.create_all(engine)
    yield engine
    Base.metadata.drop_all(engine)
    engine.dispose()


@pytest.fixture
def sessions(engine):
    yield session_factory(engine)
    with engine.begin() as conn:
        conn.execute(text("delete from audit_events"))
        conn.execute(text("delete from patients"))


@pytest.fixture
def cipher():
    return FieldCipher(FieldCipher.new_key())
