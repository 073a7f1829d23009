#!/bin/sh
# hostpipe-submit @VERSION@: hand a container command line to hostpipe on the host and, with --wait, stream
# the job's output while it runs and exit with the job's exit code.
#
# `hostpipe serve` publishes this file into the pipe's folder (bin/hostpipe-submit next to the pipe) and puts
# it back whenever it differs: change nothing here, and run it by that path. It is plain POSIX sh (dash,
# busybox sh, bash) and needs only od, tr, tail, wc, cat, mkdir, mv, rm and sleep.
# Exit codes: the job's own (128+N for a signal); @EXIT_NO_DAEMON@ no daemon answered; @EXIT_LOST@ the daemon lost the job;
# @EXIT_REFUSED@ refused; @EXIT_CANCELLED@ cancelled; @EXIT_TIMED_OUT@ timed out; @EXIT_CLIENT_ERROR@ this client failed (bad usage, unreadable reply).

pipe_name=@PIPE_NAME@
replies_name=@REPLIES@
alive_name=@ALIVE@
EXIT_NO_DAEMON=@EXIT_NO_DAEMON@
EXIT_CLIENT_ERROR=@EXIT_CLIENT_ERROR@
SIGNAL_BASE=@SIGNAL_BASE@
MAX_LINE=@MAX_LINE@

me=hostpipe-submit
nl='
'

usage() {
	cat <<'EOF'
usage: hostpipe-submit [OPTIONS] -- COMMAND [ARGUMENT]...
       hostpipe-submit --attach KEY [OPTIONS]

Hand COMMAND to hostpipe on the host as one request through the pipe. Without --wait, wait until the daemon
has taken it (refused: the reason, exit @EXIT_REFUSED@) and print its reply key; with --wait, print the job's output
while it runs and exit with the job's exit code. A TERM, INT or HUP cancels the job.

  --wait               stream the job's output and exit with its exit code
  --pod NS/NAME        the pod the job is filed under (default: $POD_NAMESPACE/$POD_NAME)
  --id ID              the pod's own name for the job
  --timeout DURATION   seconds, or 90s, 15m, 2h, 1d (capped by the host's policy)
  --key-file FILE      keep the reply key in FILE: run again, the client attaches to the job it
                       submitted before instead of running it twice
  --attach KEY         attach to the job submitted with KEY (implies --wait)
  --pipe PATH          the pipe (default: $HOSTPIPE_PIPE, or the pipe next to this script's folder)
  --no-daemon-after S  give up (exit @EXIT_NO_DAEMON@) when no daemon has answered for S seconds (default 30)
  -v, --verbose        say what happens, on stdout
  -h, --help           this text
EOF
}

cleanup() {
	[ -n "${tmp:-}" ] && rm -rf "$tmp"
	tmp=
}

fail() {
	code=$1
	shift
	printf '%s: %s\n' "$me" "$*" >&2
	cleanup
	exit "$code"
}

bad_usage() {
	printf '%s: %s (see %s --help)\n' "$me" "$*" "$me" >&2
	exit "$EXIT_CLIENT_ERROR"
}

note() {
	[ "$verbose" = 1 ] && printf '%s: %s\n' "$me" "$*"
	return 0
}

# Sleep a fifth of a second where sleep takes fractions (GNU, busybox), a second where it does not; count
# the time waited in tenths.
step=
nap() {
	if [ -z "$step" ]; then
		if sleep 0.2 2>/dev/null; then step=2; else step=10; sleep 1; fi
	elif [ "$step" = 2 ]; then
		sleep 0.2
	else
		sleep 1
	fi
	waited=$((waited + step))
}

valid_key() {
	case $1 in *[!0-9a-f]* | '') return 1 ;; esac
	[ "${#1}" -eq 64 ]
}

new_key() {
	key=$(od -An -tx1 -N32 /dev/urandom 2>/dev/null | tr -d ' \t\n')
	valid_key "$key" || fail "$EXIT_CLIENT_ERROR" "cannot make a reply key from /dev/urandom"
}

# $q becomes $1 in single quotes, as the daemon's line grammar reads it back (a ' is written '\'').
quote() {
	rest=$1
	q=
	while :; do
		case $rest in
			*\'*)
				q=$q${rest%%\'*}"'\\''"
				rest=${rest#*\'}
				;;
			*)
				q=$q$rest
				break
				;;
		esac
	done
	q="'$q'"
}

# Write one line into the pipe in one write, waiting at most $2 seconds for a reader (a pipe without one
# holds the writer at open). The subshell leaves a mark, which says whether the line went.
sender=
send() {
	rm -f "$tmp/sent" "$tmp/unsent"
	(if printf '%s\n' "$1" >"$pipe"; then : >"$tmp/sent"; else : >"$tmp/unsent"; fi) 2>/dev/null &
	sender=$!
	waited=0
	until [ -e "$tmp/sent" ] || [ -e "$tmp/unsent" ]; do
		if [ "$waited" -ge $(($2 * 10)) ]; then
			kill "$sender" 2>/dev/null
			wait "$sender" 2>/dev/null
			sender=
			return 1
		fi
		nap
	done
	wait "$sender" 2>/dev/null
	sender=
	[ -e "$tmp/sent" ]
}

# A reply file, never through a symlink: another pod could plant one to have this client print a file of its
# own container.
plain() { [ -f "$1" ] && [ ! -L "$1" ]; }

# Print what the reply's output holds past what was printed already.
off=0
relay() {
	plain "$dir/out" || return 0
	tail -c +$((off + 1)) "$dir/out" >"$tmp/chunk" 2>/dev/null || return 0
	n=$(wc -c <"$tmp/chunk")
	n=$((n))
	[ "$n" -gt 0 ] || return 0
	cat "$tmp/chunk"
	off=$((off + n))
}

read_result() {
	state= code= message= job=
	plain "$dir/result" || return 1
	while IFS= read -r l || [ -n "$l" ]; do
		case $l in
			state=*) state=${l#state=} ;;
			code=*) code=${l#code=} ;;
			message=*) message=${l#message=} ;;
			job=*) job=${l#job=} ;;
		esac
	done <"$dir/result"
	case $code in '' | *[!0-9]*) return 1 ;; esac
	[ "$code" -le 255 ]
}

read_job() {
	job= state=
	plain "$dir/job" || return 1
	while IFS= read -r l || [ -n "$l" ]; do
		case $l in
			job=*) job=${l#job=} ;;
			state=*) state=${l#state=} ;;
		esac
	done <"$dir/job"
}

finish() {
	relay
	read_result || fail "$EXIT_CLIENT_ERROR" "cannot read the reply's result in $dir/result"
	[ -n "$message" ] && printf '%s: %s\n' "$me" "$message" >&2
	note "job ${job:-?} $state, exit code $code"
	# The reply has been read: the daemon may remove it (the record and log stay on the host).
	send "{\"op\":\"done\",\"reply\":\"$key\"}" 2 || :
	cleanup
	exit "$code"
}

submitted=0
on_signal() {
	# A second signal ends the client at once.
	caught=$1
	trap 'cleanup; exit $((SIGNAL_BASE + caught))' TERM INT HUP
	if [ -n "$sender" ]; then
		# The request is being written: let it finish (briefly), so that a line that went is cancelled.
		waited=0
		until [ -e "$tmp/sent" ] || [ -e "$tmp/unsent" ] || [ "$waited" -ge 10 ]; do nap; done
		[ -e "$tmp/sent" ] && submitted=1
		kill "$sender" 2>/dev/null
		sender=
	fi
	if [ "$submitted" = 1 ] && [ ! -f "$dir/result" ]; then
		send "{\"op\":\"cancel\",\"reply\":\"$key\"}" 5 || :
		if [ "$wait" = 1 ]; then
			waited=0
			while [ ! -f "$dir/result" ] && [ "$waited" -lt 100 ]; do
				relay
				nap
			done
			relay
			if read_result; then
				[ -n "$message" ] && printf '%s: %s\n' "$me" "$message" >&2
				send "{\"op\":\"done\",\"reply\":\"$key\"}" 2 || :
			fi
		fi
	fi
	cleanup
	exit $((SIGNAL_BASE + caught))
}

# -- options -------------------------------------------------------------------------------------------------

pod= id= timeout= wait=0 attach= verbose=0 patience=30
key_file=${HOSTPIPE_KEY_FILE:-}
pipe=${HOSTPIPE_PIPE:-}
need() { [ "$2" -ge 2 ] || bad_usage "$1 needs a value"; }
while [ $# -gt 0 ]; do
	case $1 in
		--) shift; break ;;
		--wait) wait=1 ;;
		-v | --verbose) verbose=1 ;;
		-h | --help) usage; exit 0 ;;
		--pod) need "$1" $#; pod=$2; shift ;;
		--pod=*) pod=${1#*=} ;;
		--id) need "$1" $#; id=$2; shift ;;
		--id=*) id=${1#*=} ;;
		--timeout) need "$1" $#; timeout=$2; shift ;;
		--timeout=*) timeout=${1#*=} ;;
		--key-file) need "$1" $#; key_file=$2; shift ;;
		--key-file=*) key_file=${1#*=} ;;
		--attach) need "$1" $#; attach=$2; shift ;;
		--attach=*) attach=${1#*=} ;;
		--pipe) need "$1" $#; pipe=$2; shift ;;
		--pipe=*) pipe=${1#*=} ;;
		--no-daemon-after) need "$1" $#; patience=$2; shift ;;
		--no-daemon-after=*) patience=${1#*=} ;;
		-*) bad_usage "unknown option $1" ;;
		*) break ;;
	esac
	shift
done
case $patience in '' | *[!0-9]* | 0) bad_usage "--no-daemon-after takes a whole number of seconds, 1 or more" ;; esac

if [ -z "$pipe" ]; then
	case $0 in */*) here=${0%/*} ;; *) here=. ;; esac
	pipe=$here/../$pipe_name
fi
case $pipe in */*) folder=${pipe%/*} ;; *) folder=. ;; esac
replies=$folder/$replies_name
if [ -z "$pod" ] && [ -n "${POD_NAMESPACE:-}" ] && [ -n "${POD_NAME:-}" ]; then
	pod=$POD_NAMESPACE/$POD_NAME
fi

if [ -n "$attach" ]; then
	[ $# -eq 0 ] || bad_usage "--attach takes no command: it attaches to the job submitted with the key"
	valid_key "$attach" || bad_usage "--attach takes a reply key of 64 hex digits"
	key=$attach
	wait=1
	request="{\"op\":\"attach\",\"reply\":\"$key\"}"
else
	[ $# -gt 0 ] || bad_usage "give the command to run after --"
	key=
	if [ -n "$key_file" ] && [ -f "$key_file" ]; then
		IFS= read -r key <"$key_file" || :
		valid_key "$key" || fail "$EXIT_CLIENT_ERROR" "$key_file holds no reply key (64 hex digits); remove it to make a new one"
	else
		new_key
		if [ -n "$key_file" ]; then
			(umask 077 && printf '%s\n' "$key" >"$key_file.$$" && mv -f "$key_file.$$" "$key_file") ||
				fail "$EXIT_CLIENT_ERROR" "cannot keep the reply key in $key_file"
		fi
	fi
	request="HOSTPIPE_REPLY=$key"
	if [ -n "$pod" ]; then quote "$pod"; request="$request HOSTPIPE_POD=$q"; fi
	if [ -n "$id" ]; then quote "$id"; request="$request HOSTPIPE_ID=$q"; fi
	if [ -n "$timeout" ]; then quote "$timeout"; request="$request HOSTPIPE_TIMEOUT=$q"; fi
	for arg do
		case $arg in
			*"$nl"*) fail "$EXIT_CLIENT_ERROR" "an argument holds a newline, which ends a pipe line; pass such text in a file the command reads" ;;
		esac
		quote "$arg"
		request="$request $q"
	done
	size=$(printf '%s\n' "$request" | wc -c)
	size=$((size))
	[ "$size" -le "$MAX_LINE" ] ||
		fail "$EXIT_CLIENT_ERROR" "the request is $size bytes with its newline, and a pipe line holds at most $MAX_LINE so that writers are never interleaved; move long arguments into a file the command reads"
fi
nonce=${key%"${key#????????????????????????????????}"}
dir=$replies/$nonce

[ -p "$pipe" ] || fail "$EXIT_NO_DAEMON" "$pipe is not a pipe: is hostpipe serve running on the host?"
base=${TMPDIR:-/tmp}/hostpipe-submit.$$.$(od -An -tx1 -N4 /dev/urandom | tr -d ' \t\n')
(umask 077 && mkdir "$base") || fail "$EXIT_CLIENT_ERROR" "cannot make a temporary folder $base"
tmp=$base
trap cleanup EXIT
trap 'on_signal 15' TERM
trap 'on_signal 2' INT
trap 'on_signal 1' HUP

# -- hand the request over, and wait until the daemon has taken it ----------------------------------------

send "$request" "$patience" || fail "$EXIT_NO_DAEMON" "no daemon is reading $pipe (waited ${patience}s to write the request)"
submitted=1
waited=0
until [ -f "$dir/result" ] || [ -f "$dir/job" ]; do
	if [ "$waited" -ge $((patience * 10)) ]; then
		# A daemon that reads the line later must not run it for a client that has gone: take it back.
		[ -z "$attach" ] && { send "{\"op\":\"cancel\",\"reply\":\"$key\"}" 2 || :; }
		fail "$EXIT_NO_DAEMON" "no daemon answered within ${patience}s: is hostpipe serve running for $pipe?"
	fi
	nap
done
[ -f "$dir/result" ] && [ "$wait" = 1 ] && finish
if [ -f "$dir/result" ]; then
	read_result || fail "$EXIT_CLIENT_ERROR" "cannot read the reply's result in $dir/result"
	[ "$state" = refused ] && { [ -n "$message" ] && printf '%s: %s\n' "$me" "$message" >&2; cleanup; exit "$code"; }
fi
read_job
note "job ${job:-?} ${state:-queued}"
if [ "$wait" != 1 ]; then
	[ -z "$key_file" ] && printf '%s\n' "$key"
	cleanup
	exit 0
fi

# -- wait: print the output as it comes, until the result is there ---------------------------------------

beat=$(cat "$replies/$alive_name" 2>/dev/null)
last_state=$state
waited=0
while :; do
	relay
	[ -f "$dir/result" ] && finish
	if [ "$verbose" = 1 ]; then
		read_job
		[ "$state" != "$last_state" ] && note "job ${job:-?} $state"
		last_state=$state
	fi
	now=$(cat "$replies/$alive_name" 2>/dev/null)
	if [ "$now" != "$beat" ]; then
		beat=$now
		waited=0
	elif [ "$waited" -ge $((patience * 10)) ]; then
		fail "$EXIT_NO_DAEMON" "no daemon answered for ${patience}s while job ${job:-?} was live: is hostpipe serve running for $pipe?"
	fi
	nap
done
