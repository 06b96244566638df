"""The main job, `sdt run`: keys through a cluster, one analysis each, stopped cleanly.

`runner` (`sdt_core.run`: checks, then the run), `submission` (a bounded window of tasks),
`task` (what a worker runs per key), `watchdog` (keys running, or workers paused, too long),
`signals` (SIGINT, SIGTERM and SIGHUP), `memory` (peak memory per key, worker sizing).
"""
