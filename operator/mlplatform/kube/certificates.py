"""TLS files for the admission webhook server: a self-signed CA and a server certificate.

The API server calls admission webhooks over HTTPS only, and verifies the server certificate
against the ``caBundle`` of the webhook configuration. kopf can generate a certificate itself,
but its generator (``certbuilder``/``oscrypto``) fails with OpenSSL 3; these files are made with
``cryptography`` instead and handed to ``kopf.WebhookServer(certfile=..., pkeyfile=...,
cafile=...)``.

The certificate story of a deployment (what ``manifests/`` should do):

1. With cert-manager (preferred in a cluster that has it): a ``Certificate`` for the webhook
   Service's DNS names (``<svc>``, ``<svc>.<ns>``, ``<svc>.<ns>.svc``) is written into a Secret
   that the Deployment mounts (``tls.crt``, ``tls.key``, ``ca.crt``); the cainjector annotation
   ``cert-manager.io/inject-ca-from`` fills the webhook configurations' ``caBundle``.
   ``ensure_certificate`` finds those files and uses them as they are (cert-manager renews them;
   kopf's server re-reads changed files).
2. Without cert-manager: the operator generates a CA and a server certificate at startup into a
   writable directory (an ``emptyDir``) with ``ensure_certificate``, and kopf's managed webhook
   configuration (``settings.admission.managed``) publishes the CA as ``caBundle``. The key never
   leaves the pod; a restart makes a new pair, and kopf updates the configuration.

Files written: ``ca.crt`` (CA certificate, PEM), ``tls.crt`` (server certificate, PEM) and
``tls.key`` (server key, PEM, mode 0600) — the names cert-manager and ``kubernetes.io/tls``
Secrets use.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_FILE = "ca.crt"
CERT_FILE = "tls.crt"
KEY_FILE = "tls.key"
DEFAULT_VALIDITY = datetime.timedelta(days=365)


@dataclass(frozen=True)
class CertificateFiles:
    """Where the webhook server's TLS material is, and the CA bundle clients verify against."""

    cafile: Path
    certfile: Path
    pkeyfile: Path

    @property
    def ca_pem(self) -> bytes:
        """The CA certificate (PEM): a webhook configuration's ``caBundle``, decoded."""
        return self.cafile.read_bytes()


def subject_alt_names(names: Sequence[str]) -> list[x509.GeneralName]:
    """IP addresses become IP SANs, everything else a DNS SAN (both forms clients check)."""
    result: list[x509.GeneralName] = []
    for name in dict.fromkeys(names):  # ordered and without repetition
        try:
            result.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            result.append(x509.DNSName(name))
    return result


def generate_certificate(
    directory: Path,
    *,
    names: Sequence[str],
    validity: datetime.timedelta = DEFAULT_VALIDITY,
    organization: str = "mlplatform",
) -> CertificateFiles:
    """Make a new CA and a server certificate for ``names`` (DNS names or IPs) in ``directory``.

    The first name is the certificate's common name. Existing files are replaced.
    """
    if not names:
        raise ValueError("a server certificate needs at least one DNS name or IP address")
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    not_before = now - datetime.timedelta(minutes=5)  # tolerate small clock skew
    not_after = now + validity

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{organization} webhook CA"),
        ]
    )
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                    x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64]),
                ]
            )
        )
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(subject_alt_names(names)), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )

    files = CertificateFiles(
        cafile=directory / CA_FILE, certfile=directory / CERT_FILE, pkeyfile=directory / KEY_FILE
    )
    _write(files.pkeyfile, _private_pem(key), mode=0o600)
    _write(files.certfile, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    _write(files.cafile, ca_cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return files


def ensure_certificate(directory: Path, *, names: Sequence[str]) -> CertificateFiles:
    """Use the certificate already in ``directory`` (e.g. mounted by cert-manager), or make one.

    Existing files are used as they are when ``tls.crt`` and ``tls.key`` are both there; a
    missing ``ca.crt`` then means the server certificate is its own CA bundle.
    """
    certfile, pkeyfile, cafile = directory / CERT_FILE, directory / KEY_FILE, directory / CA_FILE
    if certfile.is_file() and pkeyfile.is_file():
        return CertificateFiles(
            cafile=cafile if cafile.is_file() else certfile, certfile=certfile, pkeyfile=pkeyfile
        )
    return generate_certificate(directory, names=names)


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, *, mode: int) -> None:
    """Write atomically, with the final permissions from the start (keys never world-readable)."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
