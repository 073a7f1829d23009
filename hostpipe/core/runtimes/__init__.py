"""Argument grammars and rules for each container runtime a policy can allow."""
