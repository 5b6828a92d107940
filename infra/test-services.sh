#!/usr/bin/env bash
# Services the test suite needs that pip cannot install, from Debian's packages.
#   install            install PostgreSQL (and Chromium) when missing (needs root and apt-get)
#   start-postgres     start the local cluster if it is down, create the test role and database;
#                      prints the URL, then "started" if this call started the cluster
#   stop-postgres      stop the cluster (only call it when start-postgres printed "started")
set -euo pipefail
ROLE=recpipe_test
case "${1:-}" in
install)
    missing=()
    command -v pg_ctlcluster >/dev/null || missing+=(postgresql)
    command -v chromium >/dev/null || missing+=(chromium)
    if ((${#missing[@]})); then
        if [[ $(id -u) != 0 ]]; then
            echo "test-services: missing ${missing[*]}; install them as root (apt-get install -y ${missing[*]})" >&2
            exit 1
        fi
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    ;;
start-postgres)
    version=$(ls /usr/lib/postgresql | sort -V | tail -1)
    started=""
    if ! pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" && $4=="online"' | grep -q .; then
        pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main"' | grep -q . ||
            pg_createcluster "$version" main >/dev/null
        pg_ctlcluster "$version" main start
        started=started
    fi
    port=$(pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $3}')
    as_postgres() { runuser -u postgres -- "$@"; }
    as_postgres psql -p "$port" -tAc "select 1 from pg_roles where rolname='$ROLE'" | grep -q 1 ||
        as_postgres psql -p "$port" -qc "create role $ROLE login createdb password '$ROLE'"
    as_postgres psql -p "$port" -tAc "select 1 from pg_database where datname='$ROLE'" | grep -q 1 ||
        as_postgres createdb -p "$port" -O "$ROLE" "$ROLE"
    echo "postgresql://$ROLE:$ROLE@127.0.0.1:$port/$ROLE"
    if [[ -n $started ]]; then echo started; fi
    ;;
stop-postgres)
    version=$(ls /usr/lib/postgresql | sort -V | tail -1)
    pg_ctlcluster "$version" main stop
    ;;
*)
    echo "usage: $0 install | start-postgres | stop-postgres" >&2
    exit 2
    ;;
esac
