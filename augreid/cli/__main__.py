"""``python -m augreid.cli`` (as ``torchrun -m augreid.cli`` needs)."""

from augreid.cli.common import main

if __name__ == "__main__":
    main()
