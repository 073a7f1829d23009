#!/usr/bin/env bash
# Installs what the end-to-end tests (tests/e2e) need to run real containers: podman, runc and a static busybox
# to build a local image from (no registry is reachable from CI); and what the real-manager tests
# (tests/systemd) need: systemd (the user manager, journald, systemd-analyze) and python3-systemd (the journal
# library for the system python3 the manager's test user runs hostpipe with). Safe to run again: it installs
# only what is missing. It never fails the caller: where apt cannot help, it says why and the tests skip with a
# reason.
#
# Usage: scripts/e2e-setup.sh        (as root on Debian; does nothing harmful elsewhere)
# Exit status: always 0. The last line is "e2e-setup: ready" or "e2e-setup: unavailable: REASON".

set -u

PACKAGES=(podman runc busybox-static systemd python3-systemd)
# How long to wait for another apt/dpkg run (an unattended upgrade, a provisioning step) to finish.
LOCK_WAIT_SECONDS=${E2E_SETUP_LOCK_WAIT:-900}

say() { printf 'e2e-setup: %s\n' "$*"; }
unavailable() { say "unavailable: $*"; exit 0; }

missing_packages() {
    local pkg status
    for pkg in "${PACKAGES[@]}"; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
        [ "$status" = installed ] || printf '%s\n' "$pkg"
    done
}

wait_for_other_apt() {
    # Two package managers at once fight over /var/lib/dpkg/lock-frontend; waiting is cheaper than failing.
    local waited=0
    while pgrep -x 'apt|apt-get|dpkg|unattended-upgr' >/dev/null 2>&1; do
        if [ "$waited" -eq 0 ]; then
            say "another apt/dpkg is running; waiting up to ${LOCK_WAIT_SECONDS}s for it"
        fi
        if [ "$waited" -ge "$LOCK_WAIT_SECONDS" ]; then
            return 1
        fi
        sleep 5
        waited=$((waited + 5))
    done
    return 0
}

ready_check() {
    command -v podman >/dev/null 2>&1 || return 1
    command -v runc >/dev/null 2>&1 || [ -x /usr/sbin/runc ] || [ -x /usr/bin/runc ] || return 1
    [ -x /bin/busybox ] || return 1
    return 0
}

if [ "${EUID:-$(id -u)}" -ne 0 ]; then
    if ready_check; then
        say "not root; packages already present"
        say "ready"
        exit 0
    fi
    unavailable "not root, cannot install ${PACKAGES[*]}"
fi
command -v apt-get >/dev/null 2>&1 || unavailable "apt-get not found (not a Debian-like system)"
command -v dpkg-query >/dev/null 2>&1 || unavailable "dpkg-query not found"

mapfile -t missing < <(missing_packages)
if [ "${#missing[@]}" -gt 0 ]; then
    wait_for_other_apt || unavailable "another apt/dpkg still running after ${LOCK_WAIT_SECONDS}s"
    # The run just waited for may have installed some of them.
    mapfile -t missing < <(missing_packages)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Lock::Timeout covers a package manager that starts between the wait above and this line.
    apt_opts=(-q -o DPkg::Lock::Timeout=300 -o Acquire::Retries=3)
    if ! apt-get "${apt_opts[@]}" update; then
        unavailable "apt-get update failed"
    fi
    if ! apt-get "${apt_opts[@]}" install -y "${missing[@]}"; then
        unavailable "apt-get install ${missing[*]} failed"
    fi
else
    say "packages present: ${PACKAGES[*]}"
fi

ready_check || unavailable "podman, runc or /bin/busybox still missing after install"
say "$(podman --version 2>&1), $(runc --version 2>&1 | head -n 1)"
say "$(systemctl --version 2>&1 | head -n 1)"
if command -v docker >/dev/null 2>&1; then
    say "docker CLI: $(docker --version 2>&1)"
else
    say "docker CLI not found: the docker-through-podman tests will skip"
fi
say "ready"
exit 0
