"""The session report of a run directory (`dreamer-report RUN_DIR`, docs/report.md: `page`, drawn by
`plots` from `run_data`) and what dreamer-stack records during a run for it (`run_record`).

Nothing is imported here: the recorder runs on a robot without matplotlib, the report needs it.
"""
