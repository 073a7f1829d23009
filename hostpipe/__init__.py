"""hostpipe: run the container commands that pods write into a host pipe, under a policy, and record each one."""

__version__ = "0.1.0"
