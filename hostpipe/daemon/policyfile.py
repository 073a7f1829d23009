"""Reading a policy file and resolving its runtimes on this host.

The file is TOML validated by the core's pydantic model. Errors come back as one `PolicyError` per problem
that names the file, the field and the reason, because an operator fixing a file needs all three.
Executables are looked up on the daemon's PATH once, when the policy loads, so a job never runs a program that
appeared on PATH later.
"""

from __future__ import annotations

import os
import shutil
import tomllib
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from hostpipe.core.policy import LoadedPolicy, Policy, builtin_policy

BUILTIN = "(built-in policy)"


class PolicyError(Exception):
    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.source = source
        self.problems = problems


def _problems(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "(file)"
        message = str(item["msg"]).removeprefix("Value error, ")
        problems.append(f"{field}: {message}")
    return problems


def parse_policy(text: str, source: str) -> Policy:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(source, [f"(file): not valid TOML: {error}"]) from error
    try:
        return Policy.model_validate(data)
    except ValidationError as error:
        raise PolicyError(source, _problems(error)) from error


def resolve_executables(policy: Policy, environ: Mapping[str, str]) -> dict[str, str | None]:
    search = environ.get("PATH", os.defpath)
    resolved: dict[str, str | None] = {}
    for name, runtime in policy.runtimes.items():
        found = shutil.which(runtime.executable, path=search)
        resolved[name] = os.path.abspath(found) if found else None
    return resolved


def load_policy(path: Path | None, environ: Mapping[str, str], *, required: bool) -> LoadedPolicy:
    """The policy at `path`; the built-in one when the file is absent and `required` is False."""
    if path is None or (not required and not path.exists()):
        policy, source = builtin_policy(), BUILTIN
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as error:
            raise PolicyError(
                str(path),
                ["(file): No such file; write one (see examples/), or leave out --policy for the built-in policy"],
            ) from error
        except OSError as error:
            raise PolicyError(
                str(path), [f"(file): cannot read it ({error.strerror}); check its owner and permissions"]
            ) from error
        except UnicodeDecodeError as error:
            raise PolicyError(str(path), [f"(file): not UTF-8 text ({error.reason} at byte {error.start})"]) from error
        policy, source = parse_policy(text, str(path)), str(path)
    return LoadedPolicy(policy=policy, executables=resolve_executables(policy, environ), source=source)
