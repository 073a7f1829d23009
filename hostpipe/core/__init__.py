"""The pure core: line grammar, policy decisions and job states. No I/O happens below this package."""
