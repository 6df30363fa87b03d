"""``python -m sfcframe.bench COMMAND ...`` = ``sfcframe bench COMMAND ...``."""

from sfcframe.bench.cli import main

raise SystemExit(main())
