# Functions shared by scripts/stack and scripts/test: finding or starting
# Postgres and Redis. Source it: it defines functions and the PRIVATE_*
# variables that remember what it started.
#
# Discovery order, for each server:
#   1. DATABASE_URL / REDIS_URL when set: used as they are;
#   2. a local server: Postgres on 127.0.0.1:${LOCAL_POSTGRES_PORT:-5432} as
#      user postgres (trust auth), Redis on 127.0.0.1:${LOCAL_REDIS_PORT:-6379};
#   3. else a private server started from the machine's own binaries, its data
#      in a directory of the caller's choosing, stopped by `stop_private_servers`.
#      It listens on that same port when it is free (so code and tests that
#      assume the usual ports still work), else on the next free one.
# Pointing LOCAL_*_PORT at an unused port forces the private path.

# Messages go to stderr, prefixed by the script's name.
say() { printf '[%s] %s\n' "${SCRIPT_NAME:-$(basename "$0")}" "$*" >&2; }
die() { say "error: $*"; exit 1; }

is_root() { [[ "$(id -u)" == 0 ]]; }

# Runs a Postgres binary; as the postgres user when root (initdb and postgres
# refuse to run as root).
as_postgres() {
    if is_root; then
        if command -v runuser >/dev/null; then
            runuser -u postgres -- "$@"
        else
            su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
        fi
    else
        "$@"
    fi
}

# The directory holding initdb, pg_ctl and postgres (Debian keeps them out of
# PATH, in /usr/lib/postgresql/<major>/bin).
postgres_bindir() {
    local dir
    if command -v pg_config >/dev/null; then
        dir=$(pg_config --bindir 2>/dev/null || true)
        if [[ -x "$dir/pg_ctl" && -x "$dir/initdb" ]]; then echo "$dir"; return; fi
    fi
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n -r); do
        if [[ -x "$dir/pg_ctl" && -x "$dir/initdb" ]]; then echo "$dir"; return; fi
    done
    if command -v pg_ctl >/dev/null && command -v initdb >/dev/null; then
        dirname "$(command -v pg_ctl)"; return
    fi
    return 1
}

psql_bin() {
    if command -v psql >/dev/null; then command -v psql; else echo "$(postgres_bindir)/psql"; fi
}

# Runs one SQL statement against a libpq URL and prints the unaligned result.
sql() {
    PGCONNECT_TIMEOUT=5 "$(psql_bin)" "$1" -w -X -q -v ON_ERROR_STOP=1 -tA -c "$2"
}

postgres_answers() { # port
    sql "postgres://postgres@127.0.0.1:$1/postgres" 'select 1' >/dev/null 2>&1
}

redis_answers() { # port
    local reply
    # bash's /dev/tcp: no redis-cli needed; `timeout` bounds a frozen server.
    reply=$(timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && printf 'PING\r\n' >&3 && head -c 5 <&3" 2>/dev/null) || return 1
    [[ "$reply" == "+PONG" ]]
}

port_in_use() { # port
    timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# The first port from $1 on that nothing listens on (of the next 100).
pick_port() {
    local port=$1
    while port_in_use "$port"; do
        port=$((port + 1))
        ((port < $1 + 100)) || return 1
    done
    echo "$port"
}

# Polls a command every 0.1 s for up to $1 seconds.
wait_for() { # seconds command...
    local deadline=$((SECONDS + $1)); shift
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

PRIVATE_POSTGRES_DATA=""
PRIVATE_POSTGRES_TMP=""
PRIVATE_REDIS_PID=""

# Starts a private Postgres with its data in $1 (created with initdb if
# missing, kept otherwise, wiped first if $3 is "fresh") on a free port from $2; sets PRIVATE_POSTGRES_PORT.
# (Globals, not output: a $(...) subshell would lose the server's state.)
start_private_postgres() { # dir first-port [fresh]
    local dir=$1 port bindir
    bindir=$(postgres_bindir) || die "no Postgres server binaries found (initdb, pg_ctl); install PostgreSQL or set DATABASE_URL"
    mkdir -p "$dir"
    if is_root; then
        chown postgres: "$dir"
        # The postgres user cannot reach a checkout under a private home
        # directory (/root is 0700): keep the data in /tmp instead.
        if ! as_postgres test -w "$dir"; then
            PRIVATE_POSTGRES_TMP=$(mktemp -d /tmp/videofeed-postgres.XXXXXX)
            chown postgres: "$PRIVATE_POSTGRES_TMP"
            say "the postgres user cannot write to $dir; using $PRIVATE_POSTGRES_TMP"
            dir=$PRIVATE_POSTGRES_TMP
        fi
    fi
    # A server left running by a killed run of the script: stop it first.
    if as_postgres "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        as_postgres "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    if [[ "${3:-}" == fresh || ! -f "$dir/data/PG_VERSION" ]]; then
        rm -rf "$dir/data"
        as_postgres "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
            >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    fi
    port=$(pick_port "$2") || die "no free port from $2 for a private Postgres"
    # TCP only (no unix socket: its path length limit would depend on where
    # the repo is checked out); fsync off: this data is disposable.
    as_postgres "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
        -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        start >/dev/null 2>&1 || { tail -n 20 "$dir/postgres.log" >&2; die "private Postgres did not start"; }
    PRIVATE_POSTGRES_DATA="$dir/data"
    PRIVATE_POSTGRES_PORT=$port
}

# Starts a private, non-persistent Redis in $1 on a free port from $2; sets
# PRIVATE_REDIS_PORT.
start_private_redis() { # dir first-port
    local dir=$1 port
    command -v redis-server >/dev/null || die "no redis-server found; install Redis or set REDIS_URL"
    mkdir -p "$dir"
    port=$(pick_port "$2") || die "no free port from $2 for a private Redis"
    # In a session of its own, like the postgres that pg_ctl starts, so that
    # Ctrl-C reaches the script (which stops it last), not the server.
    local setsid=()
    command -v setsid >/dev/null && setsid=(setsid)
    "${setsid[@]}" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
        </dev/null >"$dir/redis.log" 2>&1 &
    PRIVATE_REDIS_PID=$!
    wait_for 30 redis_answers "$port" || { tail -n 20 "$dir/redis.log" >&2; die "private Redis did not start"; }
    PRIVATE_REDIS_PORT=$port
}

stop_private_servers() {
    if [[ -n "$PRIVATE_REDIS_PID" ]]; then
        kill "$PRIVATE_REDIS_PID" 2>/dev/null || true
        wait "$PRIVATE_REDIS_PID" 2>/dev/null || true
        PRIVATE_REDIS_PID=""
    fi
    if [[ -n "$PRIVATE_POSTGRES_DATA" ]]; then
        as_postgres "$(postgres_bindir)/pg_ctl" -D "$PRIVATE_POSTGRES_DATA" -m fast -w -t 30 stop >/dev/null 2>&1 || true
        PRIVATE_POSTGRES_DATA=""
    fi
    if [[ -n "$PRIVATE_POSTGRES_TMP" ]]; then
        rm -rf "$PRIVATE_POSTGRES_TMP"
        PRIVATE_POSTGRES_TMP=""
    fi
}

# Sets POSTGRES_SERVER_URL (a server-level URL, database `postgres`) and
# POSTGRES_SOURCE (local or private); private data under $1 (wiped first if
# $2 is "fresh").
find_or_start_postgres() { # private-dir [fresh]
    local port=${LOCAL_POSTGRES_PORT:-5432}
    if postgres_answers "$port"; then
        POSTGRES_SOURCE=local
    else
        say "no Postgres on 127.0.0.1:$port; starting a private one (data in $1)"
        start_private_postgres "$1" "$port" "${2:-}"
        port=$PRIVATE_POSTGRES_PORT
        POSTGRES_SOURCE=private
    fi
    POSTGRES_SERVER_URL="postgres://postgres@127.0.0.1:$port"
}

# Sets REDIS_URL and REDIS_SOURCE; private data under $1.
find_or_start_redis() { # private-dir
    local port=${LOCAL_REDIS_PORT:-6379}
    if [[ -n "${REDIS_URL:-}" ]]; then
        REDIS_SOURCE=env
        return
    fi
    if redis_answers "$port"; then
        REDIS_SOURCE=local
    else
        say "no Redis on 127.0.0.1:$port; starting a private one"
        start_private_redis "$1" "$port"
        port=$PRIVATE_REDIS_PORT
        REDIS_SOURCE=private
    fi
    REDIS_URL="redis://127.0.0.1:$port"
}

# The admin console's browser tests drive Debian's chromium through
# chromedriver. Exports CHROMIUM and CHROMEDRIVER; installs the packages with
# apt-get when missing and running as root. Without them: an error under
# CI=true, else a warning (the browser test then says it is skipped).
find_browser() {
    CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
    CHROMEDRIVER=${CHROMEDRIVER:-$(command -v chromedriver || true)}
    if [[ ( -z "$CHROMIUM" || -z "$CHROMEDRIVER" ) ]] && is_root && command -v apt-get >/dev/null; then
        say "installing chromium and chromium-driver for the browser tests"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 \
            && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >&2 \
            || say "apt-get could not install chromium"
        CHROMIUM=$(command -v chromium || true)
        CHROMEDRIVER=$(command -v chromedriver || true)
    fi
    if [[ -z "$CHROMIUM" || -z "$CHROMEDRIVER" ]]; then
        [[ "${CI:-}" == true ]] && die "chromium and chromedriver are required for the browser tests in CI"
        say "warning: no chromium/chromedriver: the admin console's browser test will be skipped"
        return 0
    fi
    export CHROMIUM CHROMEDRIVER
    say "Browser: $CHROMIUM  Driver: $CHROMEDRIVER"
}

# A Compose client for tests/ops/compose.rs (`config -q` validates compose.yaml and
# needs no Docker engine): the `docker compose` plugin, else the standalone
# `docker-compose`, else Debian's `docker-compose` package installed here when
# root. Without one, that test fails under CI=true and says so elsewhere.
find_or_install_compose() {
    if docker compose version >/dev/null 2>&1 || docker-compose version >/dev/null 2>&1; then
        return
    fi
    if is_root && command -v apt-get >/dev/null; then
        say "no Compose client; installing Debian's docker-compose"
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-compose >/dev/null 2>&1; then
            apt-get update -q >/dev/null 2>&1 || true
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-compose >/dev/null 2>&1 || true
        fi
    fi
    docker-compose version >/dev/null 2>&1 || say "warning: no Compose client (docker compose / docker-compose); tests/ops/compose.rs cannot validate compose.yaml"
}
