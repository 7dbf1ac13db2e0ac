"""Command-line groups. Each module's ``add_commands(subparsers)`` adds its subcommands; every
subcommand sets ``run`` to a function of the parsed arguments that calls the library."""
