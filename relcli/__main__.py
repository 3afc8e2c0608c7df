"""`python -m relcli` runs the command line."""

from relcli.cli import main

main()
