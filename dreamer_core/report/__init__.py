"""The session report of a run directory (`dreamer-report RUN_DIR`, docs/report.md) and what
dreamer-stack records during a run for it (:mod:`dreamer_core.report.run_record`)."""

from dreamer_core.report.page import write_report
from dreamer_core.report.run_layout import RunLayout

__all__ = ["RunLayout", "write_report"]
