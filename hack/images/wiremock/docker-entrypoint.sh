#!/bin/sh
# The official wiremock image's docker-entrypoint.sh, minimally.
set -e

# No arguments, or options only: run WireMock with them.
if [ "$1" = "" ] || [ "${1#-}" != "$1" ]; then
	# shellcheck disable=SC2086
	set -- java $JAVA_OPTS -cp '/var/wiremock/lib/*:/var/wiremock/extensions/*' wiremock.Run "$@"
fi

exec "$@"
