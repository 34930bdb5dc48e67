"""An append-only audit trail whose entries are chained by SHA-256, so that
changing or removing an earlier entry is detected."""
import hashlib
import json
from dataclasses import dataclass
from typing import List

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditEntry:
    actor: str
    action: str
    subject: str
    previous: str
    digest: str


def _digest(actor: str, action: str, subject: str, previous: str) -> str:
    payload = json.dumps([actor, action, subject, previous], separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


class AuditTrail:
    def __init__(self):
        self.entries: List[AuditEntry] = []

    def append(self, actor: str, action: str, subject: str) -> AuditEntry:
        previous = self.entries[-1].digest if self.entries else GENESIS
        entry = AuditEntry(actor, action, subject, previous, _digest(actor, action, subject, previous))
        self.entries.append(entry)
        return entry

    def verify(self) -> bool:
        previous = GENESIS
        for e in self.entries:
            if e.previous != previous or e.digest != _digest(e.actor, e.action, e.subject, e.previous):
                return False
            previous = e.digest
        return True
