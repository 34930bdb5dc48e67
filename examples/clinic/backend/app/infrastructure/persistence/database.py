"""The database engine, from DATABASE_URL."""
import os

from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker


def engine_from_env(url: str = None):
    url = url or os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("DATABASE_URL is not set")
    return create_engine(url, future=True)


def session_factory(engine):
    return sessionmaker(bind=engine, future=True, expire_on_commit=False)
