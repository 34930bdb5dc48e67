"""Encryption of PHI fields at rest (Fernet: AES-128-CBC with HMAC-SHA256)."""
from cryptography.fernet import Fernet, InvalidToken


class FieldCipher:
    def __init__(self, key: bytes):
        self._fernet = Fernet(key)

    @staticmethod
    def new_key() -> bytes:
        return Fernet.generate_key()

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("PHI field cannot be decrypted with this key") from exc
