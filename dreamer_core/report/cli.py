"""``dreamer-report RUN_DIR``: write the session report of a run directory (docs/report.md) and
print its one-line verdict (did a learned version beat the initial policy?).

Exit status: 0 written, 1 the run directory does not exist or the page cannot be written,
2 bad command-line usage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dreamer-report",
        description="Write the session report of a run directory: one self-contained HTML page with the real "
                    "return per episode and per policy version, gate decisions, model checks, control timing "
                    "and replay growth (docs/report.md).")
    parser.add_argument("run_dir", type=Path, help="a dreamer-stack run directory (with replay/, learner/, ...)")
    parser.add_argument("--out", type=Path, help="where to write the page (default RUN_DIR/report.html)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.run_dir.is_dir():
        print(f"error: {args.run_dir} is not a directory; give a run directory written by dreamer-stack",
              file=sys.stderr)
        return 1
    from dreamer_core.report.page import write_page  # matplotlib loads here, after the arguments are checked
    from dreamer_core.report.run_data import load_run
    from dreamer_core.report.verdict import verdict

    data = load_run(args.run_dir)
    try:
        path = write_page(data, args.out)
    except OSError as exc:
        print(f"error: cannot write the report: {exc}", file=sys.stderr)
        return 1
    print(verdict(data.complete_returns_by_version()).line)
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
