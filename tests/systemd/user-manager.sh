#!/bin/sh
# Runs a real `systemd --user` manager for USER on a host whose PID 1 is not systemd (as root, in a private
# mount namespace: start it with `setsid unshare --mount --propagation private THIS-SCRIPT ...`).
# It fakes a booted host (a tmpfs on /run/systemd), starts its own journald writing into JOURNAL_DIR, gives the
# manager its own delegated cgroup, runs the manager until it exits, then stops journald and removes the cgroup
# folders it made. Nothing it mounts outlives the namespace.
#
# Usage: user-manager.sh USER UID GID HOME RUNTIME_DIR JOURNAL_DIR PATH
set -u
user=$1 uid=$2 gid=$3 home=$4 runtime=$5 journal=$6 path=$7

mount -t tmpfs -o mode=755 tmpfs /run/systemd || exit 90
mkdir -p /run/systemd/system /run/systemd/journal
touch /run/systemd/journal/flushed
if [ ! -d /var/log/journal ]; then
    # No persistent journal folder on this host: make one, in this namespace only.
    mount -t tmpfs -o mode=755 tmpfs /var/log || exit 91
    mkdir /var/log/journal
fi
mount --bind "$journal" /var/log/journal || exit 91
/lib/systemd/systemd-journald &
journald=$!

made=""
for hierarchy in systemd unified; do
    base=/sys/fs/cgroup/$hierarchy
    [ -d "$base" ] || continue
    for part in user.slice user.slice/user-$uid.slice user.slice/user-$uid.slice/user@$uid.service; do
        if [ ! -d "$base/$part" ]; then
            mkdir "$base/$part" || exit 92
            made="$base/$part $made"
        fi
    done
    chown -R "$uid:$gid" "$base/user.slice/user-$uid.slice/user@$uid.service"
    echo $$ > "$base/user.slice/user-$uid.slice/user@$uid.service/cgroup.procs" || exit 93
done

setpriv --reuid="$uid" --regid="$gid" --init-groups \
    env -i HOME="$home" USER="$user" LOGNAME="$user" XDG_RUNTIME_DIR="$runtime" PATH="$path" \
    /lib/systemd/systemd --user
status=$?

kill "$journald" 2>/dev/null
wait "$journald" 2>/dev/null
for hierarchy in systemd unified; do
    [ -d "/sys/fs/cgroup/$hierarchy" ] && echo $$ > "/sys/fs/cgroup/$hierarchy/cgroup.procs"
done
for dir in $made; do
    # Deepest first ($made lists them so); a unit's cgroup the manager left behind goes before its parent.
    find "$dir" -depth -type d -exec rmdir {} \; 2>/dev/null
done
exit $status
