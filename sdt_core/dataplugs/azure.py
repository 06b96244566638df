"""Data in Azure Blob Storage or ADLS Gen2 (`az://container/prefix`, `abfs://`), through fsspec's adlfs.

The account and its credentials the standard way: AZURE_STORAGE_CONNECTION_STRING, or
AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY or AZURE_STORAGE_SAS_TOKEN, or
a service principal (AZURE_STORAGE_CLIENT_ID, ..._SECRET, ..._TENANT_ID), else
DefaultAzureCredential (a managed identity, `az login`); `anonymous=true` for a public
container. `abfs://container@ACCOUNT.dfs.core.windows.net/prefix` names the account too.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from sdt_core.dataplugs import split_credentials
from sdt_core.dataplugs.folders import Folder
from sdt_core.errors import SettingsError
from sdt_core.plugs.settings import setting

INSTALL = "reading az:// and abfs:// needs adlfs: pip install 'sdt-core[abfs]'"


#: adlfs's arguments that it would otherwise read from these environment variables.
FROM_ENVIRONMENT = {
    "account_name": "AZURE_STORAGE_ACCOUNT_NAME",
    "connection_string": "AZURE_STORAGE_CONNECTION_STRING",
    "account_key": "AZURE_STORAGE_ACCOUNT_KEY",
    "sas_token": "AZURE_STORAGE_SAS_TOKEN",
    "client_id": "AZURE_STORAGE_CLIENT_ID",
    "client_secret": "AZURE_STORAGE_CLIENT_SECRET",
    "tenant_id": "AZURE_STORAGE_TENANT_ID",
}


def azure_filesystem(account_name: str | None = None, anonymous: bool = False) -> Any:
    """An adlfs filesystem for the account, with the environment's credentials.

    They are passed as arguments, as adlfs would read them: fsspec keeps one filesystem per
    arguments, so credentials changed since (a new AZURE_STORAGE_CONNECTION_STRING) get a new
    one rather than the one made with the old.
    """
    try:
        import adlfs
    except ImportError:
        raise SettingsError(INSTALL) from None
    given = {arg: os.environ[name] for arg, name in FROM_ENVIRONMENT.items() if os.environ.get(name)}
    if account_name:
        given["account_name"] = account_name
    return adlfs.AzureBlobFileSystem(anon=anonymous or None, **given)


class AzureFiles(Folder):
    """Files in Azure Blob Storage (az://container/prefix): a CSV or Parquet file per system, or a Parquet dataset."""

    scheme: ClassVar[str] = "az"

    container: str = setting("", "The container.")
    prefix: str = setting("", "Folder of the data in the container.")
    account_name: str | None = setting(
        None, "Storage account (default: AZURE_STORAGE_ACCOUNT_NAME or the connection string's)."
    )
    anonymous: bool = setting(False, "Anonymous requests, for a public container.")

    @classmethod
    def from_location(cls, location: str) -> dict[str, Any]:
        """CONTAINER/PREFIX, or CONTAINER@ACCOUNT.dfs.core.windows.net/PREFIX."""
        credentials, _ = split_credentials(location)
        if credentials:
            raise SettingsError(
                f"{cls.scheme}:// takes no credentials in the URL; set AZURE_STORAGE_ACCOUNT_KEY, "
                "AZURE_STORAGE_SAS_TOKEN or AZURE_STORAGE_CONNECTION_STRING"
            )
        head, _, prefix = location.partition("/")
        container, at, host = head.partition("@")
        account = {"account_name": host.split(".", 1)[0]} if at and host else {}
        return {"container": container, "prefix": prefix} | account

    def check(self) -> None:
        if not self.container:
            raise SettingsError(f"an Azure location needs a container: {self.scheme}://CONTAINER/PREFIX")

    @property
    def root(self) -> str:
        return f"{self.container}/{self.prefix.strip('/')}".rstrip("/")

    def url(self, path: str = "") -> str:
        return f"{self.scheme}://{path or self.root}"

    def filesystem(self) -> Any:
        return azure_filesystem(self.account_name, self.anonymous)

    def explain(self, exc: BaseException) -> str:
        name = type(exc).__name__
        text = " ".join(str(exc).split())
        first = text.split(" RequestId:")[0].split(" ErrorCode:")[0][:200]
        if name == "ClientAuthenticationError" or isinstance(exc, PermissionError) or "AuthorizationFailure" in text:
            return (
                f"access denied ({first}): check the account's credentials (AZURE_STORAGE_CONNECTION_STRING, "
                "AZURE_STORAGE_ACCOUNT_KEY or AZURE_STORAGE_SAS_TOKEN), or anonymous=true for a public container"
            )
        if isinstance(exc, FileNotFoundError) or name in ("ResourceNotFoundError", "ResourceNotFound"):
            return f"no such container or prefix ({first})"
        if name in ("ServiceRequestError", "ServiceResponseError") or isinstance(exc, (ConnectionError, TimeoutError)):
            return f"cannot reach the storage account ({first}): check the account name, its endpoint and the network"
        if isinstance(exc, ValueError) and "account" in text.lower():
            return f"{first}: set AZURE_STORAGE_ACCOUNT_NAME or AZURE_STORAGE_CONNECTION_STRING, or account_name"
        return super().explain(exc)


class AbfsFiles(AzureFiles):
    """Files in Azure Data Lake Storage Gen2 or Blob Storage (abfs://container/prefix), as az:// reads them."""

    scheme: ClassVar[str] = "abfs"
