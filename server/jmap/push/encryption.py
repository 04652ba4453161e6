"""Message encryption for Web Push (RFC 8291) in the ``aes128gcm`` content coding
(RFC 8188): what a PushSubscription with ``keys`` is sent (RFC 8620 section 7.2).

Each push has a new ephemeral P-256 key and salt; the receiver's ``p256dh`` public
key and ``auth`` secret derive the content key (RFC 8291 section 3.3-3.4).  One
record holds the whole push (our pushes are far smaller than a record)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

RECORD_SIZE = 4096
_P256 = ec.SECP256R1()


class BadKeys(ValueError):
    """``keys`` are not a P-256 public key and a 16-octet secret."""


@dataclass(frozen=True, slots=True)
class PushKeys:
    p256dh: bytes  # the receiver's public key, uncompressed point (65 octets)
    auth: bytes  # the authentication secret (16 octets)

    @classmethod
    def from_json(cls, p256dh: object, auth: object) -> PushKeys:
        """From the base64url strings of a PushSubscription's ``keys``."""
        if not isinstance(p256dh, str) or not isinstance(auth, str):
            raise BadKeys("keys must hold p256dh and auth as base64url strings")
        key, secret = _unbase64(p256dh), _unbase64(auth)
        if len(secret) != 16:
            raise BadKeys("auth must be 16 octets")
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(_P256, key)
        except ValueError:
            raise BadKeys("p256dh is not a P-256 public key") from None
        if len(key) != 65:
            raise BadKeys("p256dh must be an uncompressed point (65 octets)")
        return cls(key, secret)

    def to_json(self) -> tuple[str, str]:
        return _base64(self.p256dh), _base64(self.auth)


def _unbase64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise BadKeys("keys must be base64url") from None


def _base64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def encrypt(plaintext: bytes, keys: PushKeys, *, salt: bytes | None = None,
            private_key: ec.EllipticCurvePrivateKey | None = None) -> bytes:
    """The ``aes128gcm`` body of one push (RFC 8291 section 3.4, RFC 8188 section 2)."""
    salt = os.urandom(16) if salt is None else salt
    private_key = ec.generate_private_key(_P256) if private_key is None else private_key
    sender = private_key.public_key().public_bytes(serialization.Encoding.X962,
                                                   serialization.PublicFormat.UncompressedPoint)
    receiver = ec.EllipticCurvePublicKey.from_encoded_point(_P256, keys.p256dh)
    shared = private_key.exchange(ec.ECDH(), receiver)
    # RFC 8291 section 3.3: IKM from the shared secret, keyed by the auth secret.
    prk_key = _hmac(keys.auth, shared)
    ikm = _hmac(prk_key, b"WebPush: info\x00" + keys.p256dh + sender + b"\x01")
    # RFC 8188 section 2.2-2.3: the content key and nonce.
    prk = _hmac(salt, ikm)
    cek = _hmac(prk, b"Content-Encoding: aes128gcm\x00\x01")[:16]
    nonce = _hmac(prk, b"Content-Encoding: nonce\x00\x01")[:12]
    if len(plaintext) + 17 > RECORD_SIZE:
        raise ValueError("a push must fit one record")
    ciphertext = AESGCM(cek).encrypt(nonce, plaintext + b"\x02", None)  # last record
    header = salt + RECORD_SIZE.to_bytes(4, "big") + bytes([len(sender)]) + sender
    return header + ciphertext
