"""`python -m testenv.cli`: the same as the `testenv` console script."""

from .main import main

if __name__ == "__main__":
    main()
