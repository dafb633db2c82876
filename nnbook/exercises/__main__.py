"""``python -m nnbook.exercises build-data [--check]``: see :mod:`nnbook.exercises.build`."""
import sys

from .build import main

sys.exit(main())
