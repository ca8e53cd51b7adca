"""``python -m qmtgate ...``: the same command line as the ``qmtgate`` script."""

from qmtgate._entry import main

if __name__ == "__main__":
    main()
