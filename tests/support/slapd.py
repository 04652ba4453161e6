"""A real OpenLDAP server for tests: ``slapd`` with an mdb database under a temporary folder,
listening on 127.0.0.1 (plain, StartTLS and ldaps:// with a generated CA), stopped with
:meth:`Slapd.stop`.  Other test packages can use it too::

    with Slapd(tmp_path) as ldap:
        ldap.add_ldif(LDIF)
        ... ldap.url, ldap.ldaps_url, ldap.ca_file, ldap.admin_dn, ldap.admin_password
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import ldap3

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")

# Test-only attributes under OpenLDAP's experimental OID arc (1.3.6.1.4.1.4203.666).
TEST_SCHEMA = """\
attributetype ( 1.3.6.1.4.1.4203.666.11.90.1 NAME 'mailAlternateAddress'
    DESC 'alias addresses of a mail recipient'
    EQUALITY caseIgnoreIA5Match SUBSTR caseIgnoreIA5SubstringsMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.26{256} )
attributetype ( 1.3.6.1.4.1.4203.666.11.90.2 NAME 'mailQuota'
    DESC 'mailbox quota in bytes'
    EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.4203.666.11.90.3 NAME 'fdbmailRecipient'
    DESC 'a mail recipient: addresses and quota' SUP top AUXILIARY
    MAY ( mail $ mailAlternateAddress $ mailQuota ) )
"""


def available() -> bool:
    return os.path.exists(SLAPD) and os.path.exists(SLAPADD)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Slapd:
    def __init__(self, root: Path, suffix: str = "dc=example,dc=test",
                 admin_password: str = "admin-secret", tls: bool = True,
                 extra_config: str = ""):
        self.root = Path(root)
        self.suffix = suffix
        self.admin_dn = f"cn=admin,{suffix}"
        self.admin_password = admin_password
        self.tls = tls
        self.extra_config = extra_config    # slapd.conf lines for the database section
        self.port = free_port()
        self.tls_port = free_port()
        self.url = f"ldap://127.0.0.1:{self.port}"
        self.ldaps_url = f"ldaps://127.0.0.1:{self.tls_port}"
        self.ca_file = self.root / "ca.pem"
        self.conf = self.root / "slapd.conf"
        self.process: subprocess.Popen[bytes] | None = None

    # -- set-up ------------------------------------------------------------------------------

    def _write_config(self) -> None:
        (self.root / "db").mkdir(parents=True, exist_ok=True)
        (self.root / "fdbmail-test.schema").write_text(TEST_SCHEMA)
        includes = [SCHEMA_DIR / f"{n}.schema" for n in ("core", "cosine", "nis",
                                                         "inetorgperson")]
        includes.append(self.root / "fdbmail-test.schema")
        tls = ""
        if self.tls:
            self._write_certificates()
            tls = (f"TLSCACertificateFile {self.ca_file}\n"
                   f"TLSCertificateFile {self.root / 'server.pem'}\n"
                   f"TLSCertificateKeyFile {self.root / 'server.key'}\n")
        reader = f"cn=reader,ou=services,{self.suffix}"
        self.conf.write_text(
            "".join(f"include {p}\n" for p in includes)
            + f"pidfile {self.root / 'slapd.pid'}\n"
            f"argsfile {self.root / 'slapd.args'}\n"
            f"modulepath {MODULE_DIR}\n"
            "moduleload back_mdb\n"
            "moduleload pw-sha2\n"
            + tls
            + "database mdb\n"
            "maxsize 67108864\n"
            f'suffix "{self.suffix}"\n'
            f'rootdn "{self.admin_dn}"\n'
            f"rootpw {self.admin_password}\n"
            f"directory {self.root / 'db'}\n"
            "index objectClass eq\n"
            "index uid,cn,mail,mailAlternateAddress eq,sub\n"
            "index member eq\n"
            "access to attrs=userPassword\n"
            f'    by dn.exact="{reader}" read\n'
            "    by self write\n"
            "    by anonymous auth\n"
            "    by * none\n"
            "access to * by * read\n"
            + self.extra_config
        )

    def _write_certificates(self) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        now = datetime.datetime.now(datetime.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fdbmail test CA")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
              .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(hours=1))
              .not_valid_after(now + datetime.timedelta(days=2))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                           False, False), critical=True)
              .sign(ca_key, hashes.SHA256()))
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
                .issuer_name(ca_name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=2))
                .add_extension(x509.SubjectAlternativeName([
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                               critical=True)
                .sign(ca_key, hashes.SHA256()))
        self.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        (self.root / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file = self.root / "server.key"
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        key_file.chmod(0o600)

    # -- life cycle ----------------------------------------------------------------------------

    def start(self, ldif: str = "") -> None:
        """Write the config, load ``ldif`` offline with slapadd, start slapd, wait for it."""
        self._write_config()
        if ldif:
            data = self.root / "initial.ldif"
            data.write_text(ldif)
            subprocess.run([SLAPADD, "-f", str(self.conf), "-l", str(data)], check=True,
                           capture_output=True)
        self._run()

    def restart(self) -> None:
        """Stop slapd and start it again on the same ports with the same data."""
        self.stop()
        self._run()

    def _run(self) -> None:
        urls = self.url + "/"
        if self.tls:
            urls += " " + self.ldaps_url + "/"
        self.log = open(self.root / "slapd.log", "ab")
        self.process = subprocess.Popen(
            [SLAPD, "-f", str(self.conf), "-h", urls, "-d", "0"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"slapd exited: {(self.root / 'slapd.log').read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("slapd did not start listening")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if getattr(self, "log", None) is not None:
            self.log.close()

    def __enter__(self) -> Slapd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- data ----------------------------------------------------------------------------------

    def admin(self) -> ldap3.Connection:
        """An ldap3 connection bound as the root DN (for changing data in tests)."""
        return ldap3.Connection(ldap3.Server(self.url, get_info=ldap3.NONE),
                                self.admin_dn, self.admin_password,
                                auto_bind=ldap3.AUTO_BIND_NO_TLS, raise_exceptions=True)
