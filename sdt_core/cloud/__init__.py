"""Tooling for clusters that cost money: worker images and plans from what a run measured.

`image` (`sdt image`: a worker image pinned to this environment), `measured` (`sdt plan
--results`: time and cost of N system-years from a finished run).
"""
