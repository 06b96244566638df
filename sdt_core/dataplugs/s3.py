"""CSV files under an S3 prefix, one system per object, read with boto3."""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sdt_core.dataplugs.csv import CsvFiles
from sdt_core.errors import SettingsError
from sdt_core.plugs.settings import setting

if TYPE_CHECKING:
    import pandas as pd


def _s3_client() -> Any:
    """One client per process and endpoint, configured the standard way (AWS_* variables)."""
    return _client_for(os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"))


@functools.cache
def _client_for(endpoint_url: str | None) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url)


class S3Csv(CsvFiles):
    """CSV files under an S3 prefix (s3://bucket/prefix), one system per object."""

    bucket: str = setting("", "The bucket.")
    prefix: str = setting("", "Folder of the data files in the bucket; the rest of each name is its key.")

    @classmethod
    def from_location(cls, location: str) -> dict[str, Any]:
        """BUCKET/PREFIX: the bucket, and the folder of the data files in it."""
        bucket, _, prefix = location.partition("/")
        return {"bucket": bucket, "prefix": prefix}

    def check(self) -> None:
        if not self.bucket:
            raise SettingsError("an S3 location needs a bucket: s3://BUCKET/PREFIX")

    @property
    def folder(self) -> str:
        """The prefix as a folder: "" or ending in "/"."""
        return self.prefix.strip("/") + "/" if self.prefix.strip("/") else ""

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.folder}*{self.ext}"

    def keys(self) -> Iterable[tuple[str]]:
        pages = _s3_client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.folder)
        names = (obj["Key"][len(self.folder) :] for page in pages for obj in page.get("Contents", ()))
        return [key for key in map(self.key_of, sorted(names)) if key]

    def object_name(self, key: tuple[Any, ...]) -> str:
        return f"{self.folder}{key[0]}{self.ext}"

    def get_data(self, key: tuple[Any, ...]) -> pd.DataFrame:
        body = _s3_client().get_object(Bucket=self.bucket, Key=self.object_name(key))["Body"].read()
        return self.read(io.BytesIO(body))
