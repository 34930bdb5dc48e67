"""Patient records: validation and masking of identifiers."""
import re
from dataclasses import dataclass

_MRN = re.compile(r"^MRN-\d{6}$")


@dataclass(frozen=True)
class Patient:
    mrn: str
    name: str
    birth_year: int

    def __post_init__(self):
        if not _MRN.match(self.mrn):
            raise ValueError(f"invalid medical record number: {self.mrn!r}")
        if not 1900 <= self.birth_year <= 2100:
            raise ValueError("birth year out of range")


def mask_mrn(mrn: str) -> str:
    """Keeps the last two digits of a medical record number."""
    return "MRN-****" + mrn[-2:]
