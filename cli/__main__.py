"""``python -m cli``: the `parallax` command (how the demo and the tests start its processes)."""
from cli.main import main

main()
