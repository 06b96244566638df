"""Data under an S3 prefix (`s3://bucket/prefix`), through fsspec's s3fs.

Credentials the standard way: AWS_* variables, AWS_PROFILE and the shared files, an
instance's role; or `s3://KEY:SECRET@bucket/prefix` (masked everywhere). A public bucket
is read unsigned when no credentials are found (or with `anonymous=true`).
`AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL` points it at another S3 API (MinIO, moto).
"""

from __future__ import annotations

import functools
import os
from typing import Any

from sdt_core.dataplugs import split_credentials
from sdt_core.dataplugs.folders import Folder
from sdt_core.errors import SettingsError
from sdt_core.plugs.settings import setting

INSTALL = "reading s3:// needs s3fs: pip install 'sdt-core[s3]'"


def endpoint_url() -> str | None:
    """The S3 endpoint the AWS tools use: AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL, else AWS's own."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


@functools.cache
def _has_credentials() -> bool:
    import botocore.session

    return botocore.session.get_session().get_credentials() is not None


def s3_filesystem(anonymous: bool | None = None, key: str | None = None, secret: str | None = None) -> Any:
    """An s3fs filesystem for these credentials and today's endpoint (fsspec keeps one per arguments).

    `anonymous` None: unsigned when neither `key` nor the standard chain has credentials.
    """
    try:
        import s3fs
    except ImportError:
        raise SettingsError(INSTALL) from None
    if anonymous is None:
        anonymous = key is None and not _has_credentials()
    return s3fs.S3FileSystem(
        anon=anonymous, key=key, secret=secret, endpoint_url=endpoint_url(), config_kwargs=_retries()
    )


def _retries() -> dict[str, Any]:
    """Give up on an endpoint that does not answer within seconds, not minutes; AWS_MAX_ATTEMPTS and
    AWS_RETRY_MODE, when set, decide instead."""
    config: dict[str, Any] = {"connect_timeout": 10}
    if not {"AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE"} & set(os.environ):
        config["retries"] = {"max_attempts": 3, "mode": "standard"}
    return config


class S3Files(Folder):
    """Files under an S3 prefix (s3://bucket/prefix): a CSV or Parquet file per system, or a Parquet dataset."""

    bucket: str = setting("", "The bucket.")
    prefix: str = setting("", "Folder of the data in the bucket.")
    anonymous: bool | None = setting(
        None, "Unsigned requests, for a public bucket (default: when no credentials are found)."
    )
    access_key_id: str | None = setting(None, "AWS access key id (default: the standard chain).", secret=True)
    secret_access_key: str | None = setting(None, "AWS secret access key (default: the standard chain).", secret=True)

    @classmethod
    def from_location(cls, location: str) -> dict[str, Any]:
        """BUCKET/PREFIX: the bucket, and the folder of the data in it (KEY:SECRET@BUCKET/PREFIX also works)."""
        credentials, location = split_credentials(location)
        bucket, _, prefix = location.partition("/")
        given = {"access_key_id": credentials[0], "secret_access_key": credentials[1]} if credentials else {}
        return {"bucket": bucket, "prefix": prefix} | given

    def check(self) -> None:
        if not self.bucket:
            raise SettingsError("an S3 location needs a bucket: s3://BUCKET/PREFIX")

    @property
    def root(self) -> str:
        return f"{self.bucket}/{self.prefix.strip('/')}".rstrip("/")

    def url(self, path: str = "") -> str:
        return f"s3://{path or self.root}"

    def filesystem(self) -> Any:
        return s3_filesystem(self.anonymous, self.access_key_id, self.secret_access_key)

    def explain(self, exc: BaseException) -> str:
        name = type(exc).__name__
        endpoint = endpoint_url() or "of AWS"
        if isinstance(exc, PermissionError):
            return (
                f"access denied ({_first(exc)}): check the credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY), or anonymous=true for a public bucket"
            )
        if isinstance(exc, FileNotFoundError):
            return f"no such bucket or prefix ({_first(exc)})"
        if name == "NoCredentialsError":
            return "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        if "Connect" in name or "Endpoint" in name or isinstance(exc, (ConnectionError, TimeoutError)):
            return f"cannot reach the S3 endpoint {endpoint} ({name}): check AWS_ENDPOINT_URL and the network"
        return super().explain(exc)


def _first(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] or type(exc).__name__
