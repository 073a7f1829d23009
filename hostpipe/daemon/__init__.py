"""The I/O shell around the core: the pipe, the jobs' processes, the store, systemd and the server's lifecycle."""
