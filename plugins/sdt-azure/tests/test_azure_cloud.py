"""The azure plug on a real Azure subscription: `pytest --run-cloud`, with the variables below.

It starts a scheduler and one worker VM (costs cents), runs tasks on them and closes them.
"""

from __future__ import annotations

import os

import pytest

from sdt_core import get_plug

VARIABLES = ("AZURE_SUBSCRIPTION_ID", "SDT_AZURE_RESOURCE_GROUP", "SDT_AZURE_LOCATION", "SDT_AZURE_VNET")
VARIABLES += ("SDT_AZURE_SECURITY_GROUP", "SDT_AZURE_IMAGE")


@pytest.mark.cloud(*VARIABLES)
def test_a_real_azure_cluster_computes_and_closes():
    plug = get_plug(
        "azure",
        workers=1,
        threads=1,
        memory=6,
        vm_size="Standard_D2s_v3",
        resource_group=os.environ["SDT_AZURE_RESOURCE_GROUP"],
        location=os.environ["SDT_AZURE_LOCATION"],
        vnet=os.environ["SDT_AZURE_VNET"],
        security_group=os.environ["SDT_AZURE_SECURITY_GROUP"],
        docker_image=os.environ["SDT_AZURE_IMAGE"],
    )
    with plug as client:
        assert client.submit(sum, range(10)).result() == 45
