"""An HTTP client of the Image v2 API, for compute hosts.

Compute hosts hold no database credentials, so they read image records and
data the way Nova's compute does from Glance: over HTTP, with a token of the
service user (``[service_user]``). The token is fetched from Identity v3 with
a password, kept until shortly before it expires, and fetched again on a 401.
The image endpoint comes from the token's service catalog unless
``[service_user] image_endpoint`` names it. Standard library only (urllib),
so the compute service needs no HTTP dependency.
"""
from __future__ import annotations

import datetime
import json
import logging
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from typing import Any

from stratus import exception

LOG = logging.getLogger(__name__)
CHUNK_SIZE = 1024 * 1024


class ImageClientError(exception.StratusException):
    msg_fmt = "Image service request failed: %(reason)s"
    code = 502


class ImageNotFoundError(ImageClientError):
    msg_fmt = "Image %(image_id)s could not be found."
    code = 404


class ImageClient:
    def __init__(self, auth_url: str, username: str, password: str | None,
                 project_name: str, user_domain_name: str = "Default",
                 project_domain_name: str = "Default", image_endpoint: str | None = None,
                 region: str | None = None, timeout: float = 600.0) -> None:
        self.auth_url = auth_url.rstrip("/")
        self.username = username
        self.password = password
        self.project_name = project_name
        self.user_domain_name = user_domain_name
        self.project_domain_name = project_domain_name
        self.region = region
        self.timeout = timeout
        self._endpoint = image_endpoint.rstrip("/") if image_endpoint else None
        self._token: str | None = None
        self._expires: datetime.datetime | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_conf(cls, conf: Any) -> "ImageClient":
        su = conf.service_user
        return cls(su.auth_url, su.username, su.password, su.project_name,
                   su.user_domain_name, su.project_domain_name, su.image_endpoint,
                   conf.api.region, conf.libvirt.image_download_timeout)

    # -- authentication ---------------------------------------------------------------
    def _authenticate(self) -> None:
        if not self.password:
            raise ImageClientError(reason="no [service_user] password is configured: the "
                                          "compute service cannot fetch images")
        body = {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": self.username, "domain": {"name": self.user_domain_name},
                "password": self.password}}},
            "scope": {"project": {"name": self.project_name,
                                  "domain": {"name": self.project_domain_name}}}}}
        req = urllib.request.Request(f"{self.auth_url}/v3/auth/tokens",
                                     data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                token = resp.headers["X-Subject-Token"]
                data = json.load(resp)["token"]
        except urllib.error.HTTPError as exc:
            raise ImageClientError(
                reason=f"service user {self.username!r} cannot authenticate at "
                       f"{self.auth_url}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise ImageClientError(reason=f"identity at {self.auth_url}: {exc}") from None
        self._token = token
        expires = data.get("expires_at")
        self._expires = (datetime.datetime.fromisoformat(expires.replace("Z", "+00:00"))
                         if expires else None)
        if self._endpoint is None:
            self._endpoint = self._endpoint_from_catalog(data.get("catalog") or [])

    def _endpoint_from_catalog(self, catalog: list[dict[str, Any]]) -> str:
        for service in catalog:
            if service.get("type") != "image":
                continue
            endpoints = service.get("endpoints") or []
            for interface in ("internal", "public", "admin"):
                for ep in endpoints:
                    if ep.get("interface") == interface and (
                            self.region is None or ep.get("region") in (None, self.region)
                            or ep.get("region_id") == self.region):
                        return str(ep["url"]).rstrip("/")
        raise ImageClientError(reason="the service catalog has no image endpoint")

    def _auth_headers(self) -> dict[str, str]:
        with self._lock:
            now = datetime.datetime.now(datetime.timezone.utc)
            if self._token is None or (self._expires is not None and
                                       self._expires - now < datetime.timedelta(minutes=2)):
                self._authenticate()
            return {"X-Auth-Token": self._token or ""}

    def _invalidate(self) -> None:
        with self._lock:
            self._token = None

    def _open(self, path: str, image_id: str, method: str = "GET", data: Any = None,
              headers: dict[str, str] | None = None) -> Any:
        for attempt in (1, 2):
            req_headers = {**self._auth_headers(), **(headers or {})}
            req = urllib.request.Request(f"{self._endpoint}{path}", headers=req_headers,
                                         method=method, data=data)
            try:
                return urllib.request.urlopen(req, timeout=self.timeout)
            except urllib.error.HTTPError as exc:
                if exc.code == 401 and attempt == 1 and not _is_stream(data):
                    self._invalidate()
                    continue
                if exc.code == 404:
                    raise ImageNotFoundError(image_id=image_id) from None
                raise ImageClientError(reason=f"{method} {path}: HTTP {exc.code}") from None
            except (urllib.error.URLError, OSError) as exc:
                raise ImageClientError(reason=f"{method} {path}: {exc}") from None
        raise ImageClientError(reason=f"{method} {path}: unauthorized")

    # -- the API ----------------------------------------------------------------------
    def get(self, image_id: str) -> dict[str, Any]:
        """The image record (Glance's v2 view: ``checksum``, ``os_hash_algo``,
        ``os_hash_value``, ``disk_format``, ``size``, properties at top level)."""
        with self._open(f"/v2/images/{image_id}", image_id) as resp:
            return json.load(resp)

    def download(self, image_id: str) -> Iterator[bytes]:
        """The image data, in chunks of up to 1 MiB."""
        resp = self._open(f"/v2/images/{image_id}/file", image_id)
        try:
            while True:
                chunk = resp.read(CHUNK_SIZE)
                if not chunk:
                    return
                yield chunk
        finally:
            resp.close()

    def set_formats(self, image_id: str, disk_format: str, container_format: str) -> None:
        """Set an image's disk and container format (before its data is uploaded)."""
        patch = [{"op": "replace", "path": "/disk_format", "value": disk_format},
                 {"op": "replace", "path": "/container_format", "value": container_format}]
        with self._open(f"/v2/images/{image_id}", image_id, "PATCH",
                        json.dumps(patch).encode(),
                        {"Content-Type": "application/openstack-images-v2.1-json-patch"}):
            pass

    def upload(self, image_id: str, chunks: Iterable[bytes], size: int | None = None) -> None:
        """PUT the image data (streamed; chunked when the size is unknown)."""
        headers = {"Content-Type": "application/octet-stream"}
        if size is not None:
            headers["Content-Length"] = str(size)
        with self._open(f"/v2/images/{image_id}/file", image_id, "PUT", iter(chunks),
                        headers):
            pass

    def list_images(self, filters: dict[str, str], sort_key: str = "created_at",
                    sort_dir: str = "desc") -> list[dict[str, Any]]:
        """Every image matching ``filters`` (Glance's v2 list filters: extra
        properties, ``owner``, ...), sorted, following the ``next`` pages."""
        params: list[tuple[str, str]] = [*filters.items(), ("sort_key", sort_key),
                                         ("sort_dir", sort_dir)]
        images: list[dict[str, Any]] = []
        path: str | None = "/v2/images?" + urllib.parse.urlencode(params)
        while path:
            with self._open(path, "") as resp:
                page = json.load(resp)
            images += page.get("images") or []
            path = page.get("next")
        return images

    def delete(self, image_id: str) -> None:
        with self._open(f"/v2/images/{image_id}", image_id, "DELETE"):
            pass


def _is_stream(data: Any) -> bool:
    return data is not None and not isinstance(data, (bytes, bytearray))
