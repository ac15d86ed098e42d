#!/usr/bin/env bash
# A minimal docker-entrypoint.sh with the official mysql/mariadb images'
# contract, for Debian's MariaDB. See the Containerfile.
set -Eeo pipefail

if [ "${1:0:1}" = '-' ]; then set -- mariadbd "$@"; fi
case "$1" in mariadbd|mysqld) ;; *) exec "$@" ;; esac

DATADIR=/var/lib/mysql
SOCKET=/run/mysqld/mysqld.sock

if [ "$(id -u)" = '0' ]; then
	mkdir -p "$DATADIR" /run/mysqld
	chown -R mysql:mysql "$DATADIR" /run/mysqld
	exec setpriv --reuid=mysql --regid=mysql --init-groups "${BASH_SOURCE[0]}" "$@"
fi

# SQL string literal: backslash and quote escaped.
sql_str() { local s=${1//\\/\\\\}; s=${s//\'/\\\'}; printf "'%s'" "$s"; }
sql_id() { local s=${1//\`/\`\`}; printf '`%s`' "$s"; }

if [ ! -d "$DATADIR/mysql" ]; then
	if [ -z "${MYSQL_ROOT_PASSWORD:-}" ] && [ -z "${MYSQL_ALLOW_EMPTY_PASSWORD:-}" ]; then
		echo 'error: database is uninitialized and MYSQL_ROOT_PASSWORD is not set' >&2
		echo '  (or set MYSQL_ALLOW_EMPTY_PASSWORD=yes)' >&2
		exit 1
	fi
	echo "initializing $DATADIR"
	mariadb-install-db --datadir="$DATADIR" --rpm --skip-test-db --auth-root-authentication-method=normal \
		--skip-name-resolve \
		--loose-innodb_buffer_pool_load_at_startup=0 \
		> /tmp/install-db.log 2>&1 || { cat /tmp/install-db.log >&2; exit 1; }

	# The temporary server: no TCP at all.
	"$@" --skip-networking --socket="$SOCKET" --skip-log-bin --wsrep_on=OFF \
		--loose-innodb_buffer_pool_load_at_startup=0 &
	pid=$!
	client=(mariadb --protocol=socket --socket="$SOCKET" -uroot --database=mysql)
	for i in $(seq 1 300); do
		if mariadb-admin --protocol=socket --socket="$SOCKET" -uroot ping >/dev/null 2>&1; then break; fi
		if ! kill -0 "$pid" 2>/dev/null; then echo 'error: the init server exited' >&2; exit 1; fi
		sleep 0.2
	done
	mariadb-admin --protocol=socket --socket="$SOCKET" -uroot ping >/dev/null

	{
		echo "SET @@SESSION.SQL_LOG_BIN=0;"
		echo "DELETE FROM mysql.global_priv WHERE User='' OR (User='root' AND Host NOT IN ('localhost'));"
		echo "DROP DATABASE IF EXISTS test;"
		pw=$(sql_str "${MYSQL_ROOT_PASSWORD:-}")
		echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $pw;"
		echo "CREATE USER 'root'@'%' IDENTIFIED BY $pw;"
		echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
		echo "GRANT PROXY ON ''@'%' TO 'root'@'%' WITH GRANT OPTION;"
		if [ -n "${MYSQL_DATABASE:-}" ]; then
			echo "CREATE DATABASE IF NOT EXISTS $(sql_id "$MYSQL_DATABASE");"
		fi
		if [ -n "${MYSQL_USER:-}" ] && [ -n "${MYSQL_PASSWORD:-}" ] && [ "$MYSQL_USER" != root ]; then
			echo "CREATE USER $(sql_str "$MYSQL_USER")@'%' IDENTIFIED BY $(sql_str "$MYSQL_PASSWORD");"
			if [ -n "${MYSQL_DATABASE:-}" ]; then
				echo "GRANT ALL ON $(sql_id "$MYSQL_DATABASE").* TO $(sql_str "$MYSQL_USER")@'%';"
			fi
		fi
		echo "FLUSH PRIVILEGES;"
	} | "${client[@]}"

	if [ -n "${MYSQL_ROOT_PASSWORD:-}" ]; then
		client+=(--password="$MYSQL_ROOT_PASSWORD")
	fi
	client_db=("${client[@]}")
	[ -n "${MYSQL_DATABASE:-}" ] && client_db+=(--database="$MYSQL_DATABASE")
	for f in /docker-entrypoint-initdb.d/*; do
		case "$f" in
			*.sh)
				if [ -x "$f" ]; then echo "running $f"; "$f"; else echo "sourcing $f"; . "$f"; fi ;;
			*.sql) echo "running $f"; "${client_db[@]}" < "$f" ;;
			*.sql.gz) echo "running $f"; gunzip -c "$f" | "${client_db[@]}" ;;
			*) if [ -e "$f" ]; then echo "ignoring $f"; fi ;;
		esac
	done

	MYSQL_PWD="${MYSQL_ROOT_PASSWORD:-}" mariadb-admin --protocol=socket --socket="$SOCKET" -uroot shutdown
	wait "$pid" || true
	echo 'MariaDB init process complete; ready for start up.'
fi

exec "$@"
