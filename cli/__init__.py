"""The `recsys` command line: a shell over the library (commands in cli/commands, printing in cli/render)."""
