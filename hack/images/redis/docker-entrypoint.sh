#!/bin/sh
# A minimal docker-entrypoint.sh with the official redis image's behaviour.
set -e

# First argument an option or a config file: run redis-server with them.
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi

if [ "$1" = 'redis-server' ]; then
	# Started as root: own the working directory, drop to redis (999).
	if [ "$(id -u)" = '0' ]; then
		find . \! -user redis -exec chown redis '{}' +
		exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
	fi
	# The official image builds redis with protected mode off by default;
	# Debian's binary has it on, so turn it off here unless the arguments
	# say otherwise (with --requirepass it makes no difference anyway).
	case " $* " in
		*" --protected-mode "*) ;;
		*) set -- "$@" --protected-mode no ;;
	esac
	umask 0077
fi

exec "$@"
