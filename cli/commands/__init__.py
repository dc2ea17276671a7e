"""The commands by area; cli/main.py registers each module's `app` on the root command."""
