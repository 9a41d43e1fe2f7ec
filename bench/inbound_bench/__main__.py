"""``python -m bench.inbound_bench``."""

from bench.inbound_bench.cli import main

raise SystemExit(main())
