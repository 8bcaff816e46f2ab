"""`python -m competition`: the same as the `competition` command."""

from competition.cli import main

main()
