"""What a run shows and leaves: the terminal, the output folder, its logs and the fleet report.

`terminal` and `progress` (stderr), `summary` (RunSummary and its closing lines), `results`
(results.jsonl, run.json, summary.csv/.parquet), `folder_lock` (one run per folder), `run_log`
(run.log), `cluster_logs` (OUT/logs/), `report/` (report.html).
"""
