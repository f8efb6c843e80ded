"""The signing certificate chain and key for Content Credentials.

An operator provides a chain (leaf first, then its CA certificates) and the
leaf's private key as PEM files (``HEADSHOTS_C2PA_CERT``,
``HEADSHOTS_C2PA_KEY``). In development mode a chain of a P-256 CA and a leaf
is generated into the data dir on first start: the C2PA SDK refuses a lone
self-signed certificate. The private key is read into memory and handed to
the SDK only; no message here ever quotes it.
"""

from __future__ import annotations

import datetime
import logging
import os
import secrets
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from headshots.config import Settings
from headshots.errors import ConfigurationError

log = logging.getLogger(__name__)

DEV_FOLDER = "c2pa-development"
CHAIN_FILE = "chain.pem"
KEY_FILE = "key.pem"
DEV_ORGANISATION = "headshots development (not trusted)"

MISSING = (
    "Content Credentials are not configured. The EU AI Act (Article 50) requires "
    "AI-generated images to be marked in a machine-readable way, and this service "
    "signs every image it hands out: set HEADSHOTS_C2PA_CERT and HEADSHOTS_C2PA_KEY "
    "to your certificate chain and private key (PEM files), or set HEADSHOTS_C2PA=off "
    "to run without Content Credentials on purpose (the IPTC marking stays)."
)

# The SDK names algorithms so; each is chosen by the key's type and curve.
_CURVES = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}


@dataclass(frozen=True)
class SigningCredentials:
    chain_pem: bytes
    key_pem: bytes = field(repr=False)
    algorithm: str
    # Who signs, as a reader shows it: the leaf's organisation or name.
    signer: str
    development: bool
    tsa_url: str | None = None


def load_credentials(
    settings: Settings, *, development_fallback: bool = False
) -> SigningCredentials | None:
    """The credentials to sign with; None when the operator turned them off.

    Outside development mode a missing chain is refused with a sentence
    naming Article 50, unless ``development_fallback`` (``headshots
    generate``, whose images never leave the machine through this service).
    """
    if not settings.c2pa:
        return None
    if settings.c2pa_cert is not None or settings.c2pa_key is not None:
        if settings.c2pa_cert is None or settings.c2pa_key is None:
            raise ConfigurationError(
                "Set both HEADSHOTS_C2PA_CERT (the certificate chain) and "
                "HEADSHOTS_C2PA_KEY (its private key), or neither."
            )
        return read_credentials(settings.c2pa_cert, settings.c2pa_key, settings.c2pa_tsa_url)
    if not (settings.dev_mode or development_fallback):
        raise ConfigurationError(MISSING)
    chain, key = development_chain(settings.data_dir)
    credentials = read_credentials(chain, key, settings.c2pa_tsa_url)
    return SigningCredentials(
        chain_pem=credentials.chain_pem,
        key_pem=credentials.key_pem,
        algorithm=credentials.algorithm,
        signer=credentials.signer,
        development=True,
        tsa_url=credentials.tsa_url,
    )


def read_credentials(
    chain_path: Path, key_path: Path, tsa_url: str | None = None
) -> SigningCredentials:
    """Read and check a chain and its key, so a mistake stops start-up, not a job."""
    chain_pem = _read(chain_path, "certificate chain (HEADSHOTS_C2PA_CERT)")
    key_pem = _read(key_path, "private key (HEADSHOTS_C2PA_KEY)")
    try:
        certificates = x509.load_pem_x509_certificates(chain_pem)
    except ValueError as error:
        raise ConfigurationError(
            f"{chain_path} holds no readable PEM certificate; give the signing "
            "certificate first, then the certificates of its CA."
        ) from error
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as error:
        # Deliberately no detail from the parser: nothing of the key is echoed.
        raise ConfigurationError(
            f"{key_path} is not an unencrypted PEM private key the signer can use."
        ) from error
    leaf = certificates[0]
    if leaf.public_key() != key.public_key():
        raise ConfigurationError(
            f"The private key in {key_path} does not belong to the first certificate "
            f"in {chain_path}; put the signing certificate first."
        )
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in _CURVES:
        algorithm = _CURVES[key.curve.name]
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        algorithm = "ed25519"
    else:
        raise ConfigurationError(
            f"The key in {key_path} is of a type Content Credentials are not signed "
            "with here; use an EC key on P-256, P-384 or P-521, or Ed25519."
        )
    return SigningCredentials(
        chain_pem=chain_pem,
        key_pem=key_pem,
        algorithm=algorithm,
        signer=_display_name(leaf),
        development=False,
        tsa_url=tsa_url,
    )


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ConfigurationError(f"The {what} at {path} cannot be read: {reason}.") from error


def _display_name(certificate: x509.Certificate) -> str:
    for oid in (NameOID.ORGANIZATION_NAME, NameOID.COMMON_NAME):
        values = certificate.subject.get_attributes_for_oid(oid)
        if values:
            return str(values[0].value)
    return certificate.subject.rfc4514_string()


def development_chain(data_dir: Path) -> tuple[Path, Path]:
    """The development chain and key in the data dir, made on first use."""
    folder = data_dir / DEV_FOLDER
    if not folder.exists():
        write_development_chain(folder)
    chain, key = folder / CHAIN_FILE, folder / KEY_FILE
    mode = stat.S_IMODE(key.stat().st_mode)
    # Like ssh with a private key: a key others can read proves nothing.
    if mode & 0o077:
        raise ConfigurationError(
            f"The development signing key {key} can be read by other users "
            f"(mode {mode:o}); run: chmod 600 {key}"
        )
    return chain, key


def write_development_chain(folder: Path) -> tuple[Path, Path]:
    """Make a CA and a signing certificate under it into ``folder`` (new)."""
    folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    chain, key = _new_chain()
    # Both files are written into a private temp folder that is then renamed
    # into place: the rename is atomic and refuses an existing folder, so two
    # processes starting at once agree on one pair and never read half of it.
    temp = folder.with_name(f".{folder.name}.{secrets.token_hex(8)}")
    temp.mkdir(mode=0o700)
    try:
        _write_private(temp / CHAIN_FILE, chain)
        _write_private(temp / KEY_FILE, key)
        try:
            temp.rename(folder)
        except OSError:
            if folder.is_dir():  # another process made the pair first
                return folder / CHAIN_FILE, folder / KEY_FILE
            raise
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)
    log.warning(
        "Generated development Content Credentials (a self-made CA and signer) in %s. "
        "Readers report them as untrusted: set HEADSHOTS_C2PA_CERT and HEADSHOTS_C2PA_KEY "
        "on any real server.",
        folder,
    )
    return folder / CHAIN_FILE, folder / KEY_FILE


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def _new_chain() -> tuple[bytes, bytes]:
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=3650)

    def name(common_name: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEV_ORGANISATION),
            ]
        )

    def usage(*, sign: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=sign,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=not sign,
            crl_sign=not sign,
            encipher_only=False,
            decipher_only=False,
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("headshots development CA"))
        .issuer_name(name("headshots development CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage(sign=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name("headshots development signer"))
        .issuer_name(ca.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(sign=True), critical=True)
        # C2PA accepts a signer only with one of a few extended key usages.
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    chain = leaf.public_bytes(pem) + ca.public_bytes(pem)
    key = leaf_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return chain, key
