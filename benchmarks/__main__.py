"""``python -m benchmarks``: run every benchmark and write ``benchmarks/results.md``."""

from benchmarks._runner import main

raise SystemExit(main())
