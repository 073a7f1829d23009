"""End-to-end tests: hostpipe driving a real podman and the real docker CLI."""
