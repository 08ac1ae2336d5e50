"""The `memsoak` subcommands, one module each (NAME, HELP, add_arguments, run); see memsoak/cli.py."""
