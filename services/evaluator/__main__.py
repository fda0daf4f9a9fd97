import sys

from videophy_bench.evaluator.cli import main

sys.exit(main())
