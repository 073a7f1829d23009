"""The command line: each command parses its options and calls into the daemon package."""
