#!/usr/bin/env bash
# A minimal docker-entrypoint.sh with the official postgres image's contract
# (docker-library/postgres), for Debian's PostgreSQL 15. See the Containerfile.
set -Eeo pipefail

# Options only: run postgres with them.
if [ "${1:0:1}" = '-' ]; then set -- postgres "$@"; fi

if [ "$1" != 'postgres' ]; then exec "$@"; fi

# Started as root (docker run without --user): fix ownership, drop to 999.
if [ "$(id -u)" = '0' ]; then
	mkdir -p "$PGDATA"
	chown postgres:postgres "$PGDATA"
	chmod 700 "$PGDATA"
	exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

mkdir -p "$PGDATA"
chmod 700 "$PGDATA" 2>/dev/null || :

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	: "${POSTGRES_USER:=postgres}"
	: "${POSTGRES_DB:=$POSTGRES_USER}"
	: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
	if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != 'trust' ]; then
		echo 'error: database is uninitialized and POSTGRES_PASSWORD is not set' >&2
		echo '  (set POSTGRES_PASSWORD, or POSTGRES_HOST_AUTH_METHOD=trust to allow all connections)' >&2
		exit 1
	fi

	# initdb needs the running uid in passwd; 999 is postgres. Another uid
	# (a different runAsUser) gets a passwd entry through nss_wrapper in the
	# official image; here it must be 999.
	if ! getent passwd "$(id -u)" >/dev/null; then
		echo "error: uid $(id -u) has no passwd entry; run as 999 (postgres)" >&2
		exit 1
	fi

	echo "initdb: $PGDATA (superuser $POSTGRES_USER)"
	# shellcheck disable=SC2086
	initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "${POSTGRES_PASSWORD:-}") \
		--encoding=UTF8 --locale=C.UTF-8 $POSTGRES_INITDB_ARGS

	# initdb trusts local and loopback connections (as in the official image);
	# every other host authenticates with the password.
	printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >> "$PGDATA/pg_hba.conf"

	# The temporary server listens on the unix socket only, so a TCP
	# readiness probe (pg_isready -h 127.0.0.1) passes only for the real one.
	PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -w -t 60 \
		-o "-c listen_addresses='' -p ${PGPORT:-5432}" start

	psql_() { psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc "$@"; }
	if [ "$POSTGRES_DB" != 'postgres' ]; then
		psql_ --dbname postgres --set db="$POSTGRES_DB" <<-'SQL'
			SELECT 'CREATE DATABASE ' || quote_ident(:'db') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\gexec
		SQL
	fi

	for f in /docker-entrypoint-initdb.d/*; do
		case "$f" in
			*.sh)
				if [ -x "$f" ]; then echo "running $f"; "$f"; else echo "sourcing $f"; . "$f"; fi ;;
			*.sql) echo "running $f"; psql_ --dbname "$POSTGRES_DB" -f "$f" ;;
			*.sql.gz) echo "running $f"; gunzip -c "$f" | psql_ --dbname "$POSTGRES_DB" ;;
			*) if [ -e "$f" ]; then echo "ignoring $f"; fi ;;
		esac
	done

	PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -m fast -w stop
	unset PGPASSWORD
	echo 'PostgreSQL init process complete; ready for start up.'
fi

exec "$@"
