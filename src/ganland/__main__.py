"""`python -m ganland ...` is the `ganland` command (also under torchrun: `torchrun -m ganland train ...`)."""
import sys

from .cli import main

sys.exit(main())
