"""Password hashes of every supported format, made by the tools that write them in the wild
(slappasswd, openssl passwd, bcrypt, argon2-cffi, libpass, hashlib)."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess

import argon2
import bcrypt
from passlib import hash as ph


def _run(*argv: str, stdin: str | None = None) -> str:
    return subprocess.run(list(argv), input=stdin, check=True, capture_output=True,
                          text=True).stdout.strip()


def _salted(prefix: str, algo: str, secret: str, salt_len: int = 8) -> str:
    salt = os.urandom(salt_len)
    digest = hashlib.new(algo, secret.encode() + salt).digest()
    return "{" + prefix + "}" + base64.b64encode(digest + salt).decode()


def _plain(prefix: str, algo: str, secret: str) -> str:
    return "{" + prefix + "}" + base64.b64encode(hashlib.new(algo, secret.encode()).digest()
                                                ).decode()


def all_hashes(secret: str) -> dict[str, str]:
    """format name -> a hash of ``secret`` in that format."""
    b = bcrypt.hashpw(secret.encode(), bcrypt.gensalt(rounds=4)).decode()
    out = {
        "bcrypt-2b": b,
        "bcrypt-2a": "$2a$" + b[4:],
        "bcrypt-2y": "$2y$" + b[4:],
        "sha512-crypt": ph.sha512_crypt.using(rounds=5000).hash(secret),
        "sha512-crypt-rounds": ph.sha512_crypt.using(rounds=12345).hash(secret),
        "sha256-crypt": ph.sha256_crypt.using(rounds=5000).hash(secret),
        "sha256-crypt-rounds": ph.sha256_crypt.using(rounds=7000).hash(secret),
        "md5-crypt": ph.md5_crypt.hash(secret),
        "argon2id": argon2.PasswordHasher(time_cost=1, memory_cost=1024).hash(secret),
        "argon2i": argon2.PasswordHasher(time_cost=1, memory_cost=1024,
                                         type=argon2.Type.I).hash(secret),
        "argon2d": argon2.PasswordHasher(time_cost=1, memory_cost=1024,
                                         type=argon2.Type.D).hash(secret),
        "pbkdf2-sha256": ph.pbkdf2_sha256.using(rounds=1000).hash(secret),
        "pbkdf2-sha512": ph.pbkdf2_sha512.using(rounds=1000).hash(secret),
        "pbkdf2-sha1": ph.pbkdf2_sha1.using(rounds=1000).hash(secret),
        "{PBKDF2-SHA512}": ph.ldap_pbkdf2_sha512.using(rounds=1000).hash(secret),
        "{PBKDF2-SHA256}": ph.ldap_pbkdf2_sha256.using(rounds=1000).hash(secret),
        "{PBKDF2}": ph.ldap_pbkdf2_sha1.using(rounds=1000).hash(secret),
        "{SSHA}": _salted("SSHA", "sha1", secret),
        "{SHA}": _plain("SHA", "sha1", secret),
        "{SSHA256}": _salted("SSHA256", "sha256", secret),
        "{SHA256}": _plain("SHA256", "sha256", secret),
        "{SSHA512}": _salted("SSHA512", "sha512", secret, 16),
        "{SHA512}": _plain("SHA512", "sha512", secret),
        "{SMD5}": _salted("SMD5", "md5", secret),
        "{CRYPT}sha512": "{CRYPT}" + ph.sha512_crypt.using(rounds=5000).hash(secret),
        "{CRYPT}bcrypt": "{crypt}" + b,
        "{BLF-CRYPT}": "{BLF-CRYPT}" + "$2y$" + b[4:],
        "{SHA512-CRYPT}": "{SHA512-CRYPT}" + ph.sha512_crypt.using(rounds=5000).hash(secret),
        "{ARGON2ID}": "{ARGON2ID}" + argon2.PasswordHasher(time_cost=1, memory_cost=1024
                                                           ).hash(secret),
    }
    if shutil.which("openssl"):
        out["openssl-6"] = _run("openssl", "passwd", "-6", "-stdin", stdin=secret + "\n")
        out["openssl-5"] = _run("openssl", "passwd", "-5", "-stdin", stdin=secret + "\n")
        out["openssl-1"] = _run("openssl", "passwd", "-1", "-stdin", stdin=secret + "\n")
    if os.path.exists("/usr/sbin/slappasswd") and "\n" not in secret:
        slap = "/usr/sbin/slappasswd"
        out["slappasswd-{SSHA}"] = _run(slap, "-h", "{SSHA}", "-s", secret)
        out["slappasswd-{SHA}"] = _run(slap, "-h", "{SHA}", "-s", secret)
        out["slappasswd-{SMD5}"] = _run(slap, "-h", "{SMD5}", "-s", secret)
        out["slappasswd-{CRYPT}"] = _run(slap, "-h", "{CRYPT}", "-c", "$6$%.16s", "-s", secret)
        out["slappasswd-{SSHA512}"] = _run(slap, "-o", "module-load=pw-sha2", "-h",
                                           "{SSHA512}", "-s", secret)
        out["slappasswd-{SSHA256}"] = _run(slap, "-o", "module-load=pw-sha2", "-h",
                                           "{SSHA256}", "-s", secret)
        out["slappasswd-{ARGON2}"] = _run(slap, "-o", "module-load=argon2", "-h",
                                          "{ARGON2}", "-s", secret)
    return out
