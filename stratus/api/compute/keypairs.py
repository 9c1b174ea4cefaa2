"""``/os-keypairs`` at microversion 2.1 (Nova's keypairs.py and KeypairAPI).

Creating without ``public_key`` generates an RSA 2048 key and returns its
private half once (``private_key``); with ``public_key`` the key is imported
after it parses as an OpenSSH public key. Fingerprints are the MD5 of the
key blob in colon-separated hex, as Nova's. Key pairs belong to the calling
user; create answers 200 and delete 202 at 2.1.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import string
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.wrappers import Response

from stratus import exception, quota
from stratus.api.compute import microversion
from stratus.api.compute.common import authorize, limit_and_marker, next_link, validate
from stratus.api.compute.schemas import check_name, name as name_type
from stratus.api.wsgi import Request, Route, empty_response, json_response
from stratus.db import keypairs as db_keypairs
from stratus.utils import isotime_us

KEYPAIR_TYPE_SSH = "ssh"
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


def _authorized_user(req: Request, rule: str) -> str:
    """The user whose key pairs the request is about, once the policy allows it."""
    user_id = req.args.get("user_id") or req.context.user_id
    authorize(req, rule, {"user_id": user_id})
    return user_id


def create(req: Request) -> Response:
    body = req.json_body()
    validate(CREATE_SCHEMA, body)
    check_name(body["keypair"]["name"])
    params = body["keypair"]
    name = params["name"]
    _check_name(name)
    user_id = req.context.user_id  # (a body user_id is microversion 2.10)
    authorize(req, POLICY_CREATE, {"user_id": user_id})
    private_key: str | None = None
    if "public_key" in params:
        public_key = params["public_key"]
        key_fingerprint = fingerprint(public_key)
    else:
        private_key, public_key, key_fingerprint = generate_key_pair()
    keypair = db_keypairs.keypair_create(
        req.state.db, user_id=user_id, name=name, public_key=public_key,
        fingerprint=key_fingerprint, key_type=KEYPAIR_TYPE_SSH,
        max_per_user=key_pairs_limit(req))
    view = {"name": keypair["name"], "public_key": keypair["public_key"],
            "fingerprint": keypair["fingerprint"], "user_id": keypair["user_id"]}
    if private_key is not None:
        view["private_key"] = private_key
    return json_response({"keypair": view})


def index(req: Request) -> Response:
    user_id = _authorized_user(req, POLICY_INDEX)
    paged = microversion.is_supported(req, PAGING_VERSION)
    limit, marker = limit_and_marker(req) if paged else (None, None)
    keypairs = db_keypairs.keypair_get_all(req.state.db, user_id, limit=limit, marker=marker)
    body: dict[str, Any] = {"keypairs": [
        {"keypair": {"name": k["name"], "public_key": k["public_key"],
                     "fingerprint": k["fingerprint"]}}
        for k in keypairs]}
    if limit is not None:
        links = next_link(req, "os-keypairs", keypairs, limit, marker_key="name")
        if links:
            body["keypairs_links"] = links
    return json_response(body)


def show(req: Request, keypair_name: str) -> Response:
    k = db_keypairs.keypair_get(req.state.db, _authorized_user(req, POLICY_SHOW), keypair_name)
    return json_response({"keypair": {
        "name": k["name"],
        "public_key": k["public_key"],
        "fingerprint": k["fingerprint"],
        "user_id": k["user_id"],
        "id": k["id"],
        "created_at": isotime_us(k["created_at"]),
        "updated_at": None,
        "deleted": False,
        "deleted_at": None,
    }})


def delete(req: Request, keypair_name: str) -> Response:
    db_keypairs.keypair_destroy(req.state.db, _authorized_user(req, POLICY_DELETE),
                                keypair_name)
    return empty_response(202)


def routes() -> list[Route]:
    return [
        Route("GET", "/os-keypairs", index),
        Route("POST", "/os-keypairs", create),
        Route("GET", "/os-keypairs/<keypair_name>", show),
        Route("DELETE", "/os-keypairs/<keypair_name>", delete),
    ]
