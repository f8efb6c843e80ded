"""`python -m headshots` is the `headshots` command."""

from headshots.cli import app

app(prog_name="headshots")
