"""A real SMTP server on loopback (aiosmtpd) with a certificate made for the test, and a client context trusting it.

The certificate authority and the server's certificate (for ``127.0.0.1`` and ``localhost``) are made
with ``cryptography`` in the test's temporary directory; nothing is read from or trusted on the machine.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.message
import email.policy
import ipaddress
import socket
import ssl
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

USER, PASSWORD = "mailer", "s3cret pass/word"


@dataclasses.dataclass(frozen=True)
class Certificates:
    ca: Path          # the test's certificate authority (what the client trusts)
    cert: Path        # the server's chain
    key: Path

    def client_context(self) -> ssl.SSLContext:
        """What SmtpMailer verifies against in these tests: this CA only (host names checked)."""
        return ssl.create_default_context(cafile=str(self.ca))

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.cert), str(self.key))
        return context


def make_certificates(directory: Path, names: tuple[str, ...] = ("127.0.0.1", "localhost")) -> Certificates:
    """A CA and a server certificate it signed for ``names`` (IP addresses or DNS names), valid for a day."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "verify-service test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    alt_names: list[x509.GeneralName] = []
    for name in names:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt_names.append(x509.DNSName(name))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    paths = Certificates(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    paths.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    return paths


@dataclasses.dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: email.message.EmailMessage
    tls: bool          # the message came over TLS (STARTTLS or implicit)
    login: str | None  # the user that authenticated, if any

    @property
    def text(self) -> str:
        body = self.message.get_body(preferencelist=("plain",))
        assert body is not None
        return str(body.get_content())


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        tls = server.transport.get_extra_info("ssl_object") is not None
        self.server.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                             message, tls=tls, login=login))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(), PASSWORD.encode())
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class SmtpServer:
    """aiosmtpd on ``host``: ``mode`` is "starttls" (required, with AUTH), "implicit" (TLS from the first byte),
    or "plain" (no TLS offered at all: what SmtpMailer must refuse)."""

    def __init__(self, certificates: Certificates, *, mode: str = "starttls", host: str = "127.0.0.1") -> None:
        self.received: list[Received] = []
        self.host, self.port = host, free_port(host)
        params: dict[str, Any] = {}
        if mode == "starttls":
            params = dict(tls_context=certificates.server_context(), require_starttls=True,
                          authenticator=_authenticate, auth_required=True)
        elif mode == "implicit":
            # aiosmtpd counts only STARTTLS as TLS for AUTH; here the whole connection is TLS already.
            params = dict(ssl_context=certificates.server_context(), server_hostname="127.0.0.1",
                          authenticator=_authenticate, auth_required=True, auth_require_tls=False)
        # The server's own EHLO name; its ready check talks to it over loopback.
        self.controller = Controller(_Handler(self), hostname=host, port=self.port, **params)
        self.controller.start()

    def url(self, scheme: str = "smtp", *, user: str = USER, password: str = PASSWORD, host: str | None = None) -> str:
        from urllib.parse import quote

        return f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{host or self.host}:{self.port}"

    def stop(self) -> None:
        self.controller.stop()
