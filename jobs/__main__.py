"""`python -m jobs`: the same scheduler as `recsys schedule`, settings from RECSYS_* env vars."""

from __future__ import annotations

import sys

from jobs.scheduler import main

if __name__ == "__main__":
    sys.exit(main())
