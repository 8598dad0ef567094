"""Where data lives: the only package that knows paths, table names and readers."""
