"""``python -m qmtgate ...``: the same command line as the ``qmtgate`` script."""

from qmtgate.cli import app

if __name__ == "__main__":
    app()
