import sys

from videophy_bench.generator.cli import main

sys.exit(main())
