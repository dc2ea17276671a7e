"""`python -m cli …`: the same command as the `recsys` console script."""

from cli.main import main

if __name__ == "__main__":  # pragma: no cover
    main()
