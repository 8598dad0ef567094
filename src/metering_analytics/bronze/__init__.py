"""Bronze: every Capture record, as it arrived, with its position and source file."""
