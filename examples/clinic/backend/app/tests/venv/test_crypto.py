import pytest

from backend.app.infrastructure.security.crypto import FieldCipher


@pytest.mark.security
@pytest.mark.hipaa("164.312(a)(2)(iv)")
def test_a_field_round_trips_and_the_ciphertext_hides_it():
    cipher = FieldCipher(FieldCipher.new_key())
    token = cipher.encrypt("Synthetic Person")
    assert "Synthetic" not in token
    assert cipher.decrypt(token) == "Synthetic Person"


@pytest.mark.security
@pytest.mark.hipaa("164.312(a)(2)(iv)")
def test_another_key_cannot_read_it():
    token = FieldCipher(FieldCipher.new_key()).encrypt("1980-01-01")
    with pytest.raises(ValueError):
        FieldCipher(FieldCipher.new_key()).decrypt(token)
