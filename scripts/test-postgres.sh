#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for the store's tests and prints its URL on stdout:
#
#     url=$(scripts/test-postgres.sh) && export RACEJUDGE_TEST_POSTGRES=$url
#
# Installs nothing: it needs Debian's `postgresql` package (PostgreSQL 15 preferred, else the
# newest installed). The cluster lives in a fresh temp directory, listens on 127.0.0.1 only, on a
# free port, trusts local connections (it holds nothing but test data) and runs as a non-root
# user (PostgreSQL refuses root): `postgres` when run as root, else the caller. It keeps running
# after the script exits; the line on stderr says how to stop it.
set -euo pipefail

bindir=/usr/lib/postgresql/15/bin
if [[ ! -x $bindir/initdb ]]; then
    bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
fi
if [[ -z $bindir || ! -x $bindir/initdb ]]; then
    echo "test-postgres: no PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql)" >&2
    exit 1
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/racejudge-pg.XXXXXX")
# Run PostgreSQL's programs as a user it accepts.
as_pg() { "$@"; }
stop="$bindir/pg_ctl -D $dir/data stop"
if [[ $(id -u) == 0 ]]; then
    if ! id postgres >/dev/null 2>&1; then
        echo "test-postgres: running as root and there is no 'postgres' user to run the server as" >&2
        exit 1
    fi
    chown postgres: "$dir"
    chmod 700 "$dir"
    as_pg() { runuser -u postgres -- "$@"; }
    stop="runuser -u postgres -- $stop"
fi

as_pg "$bindir/initdb" -D "$dir/data" --username=racejudge --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }

# A port nobody listens on: try a few random ones, since another cluster (or a test) may take
# the one we picked between our check and the server's bind.
for _ in $(seq 20); do
    port=$((20000 + RANDOM % 20000))
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        continue # something answers there
    fi
    if as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c fsync=off" \
        start >&2; then
        as_pg "$bindir/createdb" -h 127.0.0.1 -p "$port" -U racejudge racejudge_test
        echo "test-postgres: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port, data in $dir;" \
            "stop with: $stop" >&2
        echo "postgres://racejudge@127.0.0.1:$port/racejudge_test"
        exit 0
    fi
    tail -n 5 "$dir/server.log" >&2 || true
done
echo "test-postgres: could not start PostgreSQL (see $dir/server.log)" >&2
exit 1
