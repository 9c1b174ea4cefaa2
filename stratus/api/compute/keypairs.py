"""``/os-keypairs`` up to microversion 2.34 (Nova's keypairs.py and KeypairAPI).

Creating without ``public_key`` generates an RSA 2048 key and returns its
private half once (``private_key``); with ``public_key`` the key is imported
after it parses as an OpenSSH public key. Fingerprints are the MD5 of the
key blob in colon-separated hex, as Nova's. Key pairs belong to the calling
user; create answers 200 and delete 202 at 2.1.

2.2: a key pair has a ``type``, ``ssh`` (the default) or ``x509`` (a PEM
certificate, generated as Nova's WinRM certificate or imported; its
fingerprint is the SHA-1 of the DER certificate); bodies show it; create
answers 201 and delete 204.
2.10: ``user_id`` (create's body, the query of list/show/delete) names
another user's key pairs, as far as the policy lets the caller (admins);
before 2.10 a ``user_id`` query parameter is ignored, as Nova's.
"""
from __future__ import annotations

import base64
import copy
import binascii
import hashlib
import datetime
import string
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier
from werkzeug.wrappers import Response

from stratus import exception, quota
from stratus.api.compute import microversion
from stratus.api.compute.common import authorize, limit_and_marker, next_link, validate
from stratus.api.compute.schemas import check_name, name as name_type
from stratus.api.wsgi import Request, Route, empty_response, json_response
from stratus.db import keypairs as db_keypairs
from stratus.utils import isotime_us

KEYPAIR_TYPE_SSH = "ssh"
KEYPAIR_TYPE_X509 = "x509"
KEYPAIR_TYPES = (KEYPAIR_TYPE_SSH, KEYPAIR_TYPE_X509)
TYPE_VERSION = "2.2"      # type; create 201, delete 204
USER_ID_VERSION = "2.10"  # user_id in create's body and the queries
# Nova's WinRM certificates: the UPN otherName (Microsoft's OID) and 10 years.
_UPN_OID = ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")
X509_VALID_DAYS = 3650
GENERATED_KEY_COMMENT = "Generated-by-Nova"
_SAFE_NAME_CHARS = frozenset("_- " + string.digits + string.ascii_letters)
POLICY_INDEX = "os_compute_api:os-keypairs:index"
POLICY_SHOW = "os_compute_api:os-keypairs:show"
POLICY_CREATE = "os_compute_api:os-keypairs:create"
POLICY_DELETE = "os_compute_api:os-keypairs:delete"
PAGING_VERSION = "2.35"  # limit, marker (a key pair name), keypairs_links


class InvalidKeypair(exception.Invalid):
    msg_fmt = "Keypair data is invalid: %(reason)s"


CREATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "keypair": {
            "type": "object",
            "properties": {"name": name_type,
                           "public_key": {"type": "string"}},
            "required": ["name"],
            "additionalProperties": False,
        },
    },
    "required": ["keypair"],
    "additionalProperties": False,
}
# Nova's create_v22 and create_v210.
CREATE_SCHEMA_V22: dict[str, Any] = copy.deepcopy(CREATE_SCHEMA)
CREATE_SCHEMA_V22["properties"]["keypair"]["properties"]["type"] = {
    "type": "string", "enum": list(KEYPAIR_TYPES)}
CREATE_SCHEMA_V210: dict[str, Any] = copy.deepcopy(CREATE_SCHEMA_V22)
CREATE_SCHEMA_V210["properties"]["keypair"]["properties"]["user_id"] = {"type": "string"}


# -- keys ----------------------------------------------------------------------

def fingerprint(public_key: str) -> str:
    """Nova's fingerprint of an OpenSSH public key; InvalidKeypair if it does not parse."""
    try:
        serialization.load_ssh_public_key(public_key.encode("utf-8"))
        blob = base64.b64decode(public_key.split()[1])
    except (ValueError, IndexError, binascii.Error, UnicodeEncodeError, UnsupportedAlgorithm):
        raise InvalidKeypair(reason="failed to generate fingerprint")
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def generate_key_pair(bits: int = 2048) -> tuple[str, str, str]:
    """(private_key PEM, public_key OpenSSH line, fingerprint) of a new RSA key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_key = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption()).decode("ascii")
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode("ascii")
    public_key = f"{public} {GENERATED_KEY_COMMENT}"
    return private_key, public_key, fingerprint(public_key)


def x509_fingerprint(pem: str) -> str:
    """Nova's generate_x509_fingerprint: SHA-1 of the DER certificate, colon-hex."""
    try:
        cert = x509.load_pem_x509_certificate(pem.encode("utf-8"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise InvalidKeypair(reason=f"failed to generate X509 fingerprint. "
                                    f"Error message: {exc}")
    digest = cert.fingerprint(hashes.SHA1()).hex()  # noqa: S303 - Nova's fingerprint
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def _der_utf8_string(text: str) -> bytes:
    """``text`` as a DER UTF8String (tag 12, then its length, short or long form)."""
    data = text.encode("utf-8")
    if len(data) < 0x80:
        length = bytes([len(data)])
    else:
        size = len(data).to_bytes((len(data).bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(size)]) + size
    return b"\x0c" + length + data


def generate_x509_cert(user_id: str, bits: int = 2048) -> tuple[str, str, str]:
    """(private_key PEM, certificate PEM, fingerprint): Nova's
    generate_winrm_x509_cert, a self-signed client-auth certificate for
    ``user_id`` with the UPN ``user_id@localhost``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user_id)])
    upn = x509.OtherName(_UPN_OID, _der_utf8_string(f"{user_id}@localhost"))
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(X509_VALID_DAYS))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName([upn]), critical=False)
            .sign(key, hashes.SHA256()))
    private_key = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption()).decode("ascii")
    certificate = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
    return private_key, certificate, x509_fingerprint(certificate)


def _check_name(name: str) -> None:
    """At 2.1 a key pair name holds letters, digits, '_', '-' and spaces only
    (its 1-255 length is the schema's)."""
    if any(ch not in _SAFE_NAME_CHARS for ch in name):
        raise InvalidKeypair(reason="Keypair name contains unsafe characters")


# -- handlers ------------------------------------------------------------------

def key_pairs_limit(req: Request) -> int:
    """The key_pairs quota of the caller's project (it limits each user)."""
    with req.state.db.read() as s:
        return quota.QuotaEngine(req.state.conf).limits(s, req.context.project_id)["key_pairs"]


def _query_user_id(req: Request) -> str | None:
    """The ``user_id`` query parameter (its first value), from 2.10 on."""
    if not microversion.is_supported(req, USER_ID_VERSION):
        return None
    values = req.args.getlist("user_id")
    return values[0] if values else None


def _authorized_user(req: Request, rule: str, user_id: str | None = None) -> str:
    """The user whose key pairs the request is about, once the policy allows it."""
    user_id = user_id or req.context.user_id
    authorize(req, rule, {"user_id": user_id, "project_id": req.context.project_id})
    return user_id


def _view(keypair: dict[str, Any], with_type: bool, *extra: str) -> dict[str, Any]:
    """Nova's _filter_keypair: name, public_key, fingerprint, the extras and
    (from 2.2) type."""
    view = {"name": keypair["name"], "public_key": keypair["public_key"],
            "fingerprint": keypair["fingerprint"]}
    for key in extra:
        view[key] = keypair[key]
    if with_type:
        view["type"] = keypair["type"]
    return view


def create(req: Request) -> Response:
    body = req.json_body()
    with_type = microversion.is_supported(req, TYPE_VERSION)
    with_user = microversion.is_supported(req, USER_ID_VERSION)
    validate(CREATE_SCHEMA_V210 if with_user else
             CREATE_SCHEMA_V22 if with_type else CREATE_SCHEMA, body)
    check_name(body["keypair"]["name"])
    params = body["keypair"]
    name = params["name"]
    _check_name(name)
    key_type = params.get("type", KEYPAIR_TYPE_SSH)
    user_id = _authorized_user(req, POLICY_CREATE, params.get("user_id"))
    private_key: str | None = None
    if "public_key" in params:
        public_key = params["public_key"]
        key_fingerprint = (x509_fingerprint(public_key) if key_type == KEYPAIR_TYPE_X509
                           else fingerprint(public_key))
    elif key_type == KEYPAIR_TYPE_X509:
        private_key, public_key, key_fingerprint = generate_x509_cert(user_id)
    else:
        private_key, public_key, key_fingerprint = generate_key_pair()
    keypair = db_keypairs.keypair_create(
        req.state.db, user_id=user_id, name=name, public_key=public_key,
        fingerprint=key_fingerprint, key_type=key_type,
        max_per_user=key_pairs_limit(req))
    view = _view(keypair, with_type, "user_id")
    if private_key is not None:
        view["private_key"] = private_key
    return json_response({"keypair": view}, status=201 if with_type else 200)


def index(req: Request) -> Response:
    user_id = _authorized_user(req, POLICY_INDEX, _query_user_id(req))
    with_type = microversion.is_supported(req, TYPE_VERSION)
    paged = microversion.is_supported(req, PAGING_VERSION)
    limit, marker = limit_and_marker(req) if paged else (None, None)
    keypairs = db_keypairs.keypair_get_all(req.state.db, user_id, limit=limit, marker=marker)
    body: dict[str, Any] = {"keypairs": [{"keypair": _view(k, with_type)} for k in keypairs]}
    if limit is not None:
        links = next_link(req, "os-keypairs", keypairs, limit, marker_key="name")
        if links:
            body["keypairs_links"] = links
    return json_response(body)


def show(req: Request, keypair_name: str) -> Response:
    user_id = _authorized_user(req, POLICY_SHOW, _query_user_id(req))
    k = db_keypairs.keypair_get(req.state.db, user_id, keypair_name)
    view = _view(k, microversion.is_supported(req, TYPE_VERSION), "user_id", "id")
    view.update({"created_at": isotime_us(k["created_at"]), "updated_at": None,
                 "deleted": False, "deleted_at": None})
    return json_response({"keypair": view})


def delete(req: Request, keypair_name: str) -> Response:
    user_id = _authorized_user(req, POLICY_DELETE, _query_user_id(req))
    db_keypairs.keypair_destroy(req.state.db, user_id, keypair_name)
    return empty_response(204 if microversion.is_supported(req, TYPE_VERSION) else 202)


def routes() -> list[Route]:
    return [
        Route("GET", "/os-keypairs", index),
        Route("POST", "/os-keypairs", create),
        Route("GET", "/os-keypairs/<keypair_name>", show),
        Route("DELETE", "/os-keypairs/<keypair_name>", delete),
    ]
