"""TLS for every listener: server contexts from PEM files, and a self-signed certificate
generated on first run for development (``<data_dir>/tls/``).

Shared by SMTP now and IMAP later, through one :class:`ServerTls` per process
(``[tls]``).  Generation is safe against concurrent nodes on one data folder: an
exclusive lock file, and files replaced atomically.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import fcntl
import ipaddress
import logging
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

log = logging.getLogger(__name__)

SELF_SIGNED_DAYS = 825
CERT_FILE = "selfsigned-cert.pem"
KEY_FILE = "selfsigned-key.pem"


def ensure_self_signed(folder: Path, hostname: str) -> tuple[Path, Path]:
    """(cert, key) in ``folder``, created if missing (ECDSA P-256; names ``hostname``,
    ``localhost``, 127.0.0.1 and ::1)."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert_path, key_path = folder / CERT_FILE, folder / KEY_FILE
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (cert_path.exists() and key_path.exists()):
            cert_pem, key_pem = self_signed_pem(hostname)
            _write_atomic(key_path, key_pem, 0o600)
            _write_atomic(cert_path, cert_pem, 0o644)
    return cert_path, key_path


def self_signed_pem(hostname: str) -> tuple[bytes, bytes]:
    """A new self-signed certificate and its key, PEM encoded."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in dict.fromkeys(
        (hostname, "localhost")) if not _is_ip(n)]
    alt_names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ("127.0.0.1", "::1")]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SELF_SIGNED_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context: TLS 1.2 or newer, the default ciphers, no client certificates."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx


def load_or_create(cert: str, key: str, data_dir: Path, hostname: str) -> ssl.SSLContext:
    """The configured cert and key, or the self-signed pair of ``<data_dir>/tls/``."""
    if bool(cert) != bool(key):
        raise ValueError("set both the TLS certificate and key, or neither")
    if cert:
        return server_context(Path(cert), Path(key))
    return server_context(*ensure_self_signed(data_dir / "tls", hostname))


class ServerTls:
    """The TLS context of one process of the node, shared by every listener: made on
    first use from ``[tls]`` (or the self-signed pair), and with ``reload`` > 0 the
    configured files are looked at every ``reload`` seconds and read again into the same
    context when they changed (a renewed certificate serves new connections without a
    restart; a pair that does not load is logged and the old one kept)."""

    def __init__(self, cert: str, key: str, reload: float, data_dir: Path) -> None:
        if bool(cert) != bool(key):
            raise ValueError("set both the TLS certificate and key, or neither")
        self.cert, self.key, self.reload = cert, key, reload
        self.data_dir = data_dir
        self._context: ssl.SSLContext | None = None
        self._stamp: tuple[float, ...] = ()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def context(self, hostname: str) -> ssl.SSLContext:
        """The context (``hostname`` names a self-signed certificate made now)."""
        async with self._lock:
            if self._context is None:
                self._stamp = self._files_stamp()
                self._context = await asyncio.to_thread(
                    load_or_create, self.cert, self.key, self.data_dir, hostname)
                if self.cert and self.reload > 0:
                    self._task = asyncio.create_task(self._watch(), name="tls-reload")
            return self._context

    def check(self) -> bool:
        """Read the files again if they changed since the last read; whether they were."""
        stamp = self._files_stamp()
        if self._context is None or stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            self._context.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as e:
            log.error("TLS certificate %s not reloaded, the old one stays: %s", self.cert, e)
            return False
        log.info("TLS certificate %s reloaded", self.cert)
        return True

    def _files_stamp(self) -> tuple[float, ...]:
        try:
            return tuple(os.stat(p).st_mtime_ns for p in (self.cert, self.key) if p)
        except OSError:
            return self._stamp

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.reload)
            self.check()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
