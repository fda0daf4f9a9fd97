import sys

from services.generator.cli import main

sys.exit(main())
