import sys

from services.evaluator.cli import main

sys.exit(main())
