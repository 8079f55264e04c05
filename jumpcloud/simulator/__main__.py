import sys

from jumpcloud.simulator.cli import main

sys.exit(main())
