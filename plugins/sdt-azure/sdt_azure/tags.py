"""The tags every resource of a start carries: the start's id and time (`sdt clean azure`)."""

START_TAG = "sdt-core-start"
#: The start's time, ISO 8601 in UTC, for `sdt clean --older-than`.
STARTED_TAG = "sdt-core-started"
#: dask-cloudprovider's own tag: the cluster id in the names of its VMs and their OS disks.
CLUSTER_TAG = "cluster-id"
