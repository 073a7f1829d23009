"""The options of `hostpipe serve` that publish its metrics (docs/metrics.md), checked before anything starts."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from hostpipe.cli.common import Exit, fail
from hostpipe.core.listen import AddressError, ListenAddress, parse_listen_address

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class MetricsOptions:
    textfile: Path | None = None
    address: ListenAddress | None = None


def metrics_options(func: F) -> F:
    """Add --metrics-textfile, --metrics and --metrics-allow-remote, and pass them checked as `metrics`."""

    @click.option(
        "--metrics-textfile",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Write Prometheus metrics to this node_exporter textfile-collector file (*.prom) every second.",
    )
    @click.option(
        "--metrics", "metrics_address", metavar="ADDR", help="Serve Prometheus metrics on ADDR (127.0.0.1:9464)."
    )
    @click.option(
        "--metrics-allow-remote", is_flag=True, help="Let --metrics listen on an address other than loopback."
    )
    @functools.wraps(func)
    def wrapper(
        *args: Any,
        metrics_textfile: Path | None,
        metrics_address: str | None,
        metrics_allow_remote: bool,
        **kwargs: Any,
    ) -> Any:
        if metrics_textfile is not None and metrics_textfile.suffix != ".prom":
            fail(f"{metrics_textfile}: the textfile collector reads only files named *.prom", Exit.USAGE)
        address = None
        if metrics_address is not None:
            try:
                address = parse_listen_address(metrics_address, allow_remote=metrics_allow_remote)
            except AddressError as error:
                fail(f"--metrics: {error}", Exit.USAGE)
        return func(*args, metrics=MetricsOptions(metrics_textfile, address), **kwargs)

    return wrapper  # type: ignore[return-value]
