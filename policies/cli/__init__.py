"""Command-line entry points that need both envs and vla (collection, evaluation)."""
