#!/bin/sh
# Provisioning Job of a managed Agora database: waits for PostgreSQL, then runs
# provision.sql once per service in $SERVICES with that service's password (mounted
# from its Secret under $SECRETS_DIR/<service>/password), and, when $READER names a
# role, makes it the backups' read-only role (reader.sql, its password under
# $SECRETS_DIR/$READER/password) with CONNECT on every service's database.
set -eu
PROVISION_DIR=${PROVISION_DIR:-/provision}
SECRETS_DIR=${SECRETS_DIR:-/secrets}
tries=0
until pg_isready -q; do
  tries=$((tries + 1))
  if [ "$tries" -ge 120 ]; then
    echo "PostgreSQL at $PGHOST did not become ready" >&2
    exit 1
  fi
  sleep 1
done
for service in $SERVICES; do
  DB_PASSWORD=$(cat "$SECRETS_DIR/$service/password")
  export DB_PASSWORD
  psql -v ON_ERROR_STOP=1 -v role="$service" -v db="$service" -f "$PROVISION_DIR/provision.sql"
  echo "provisioned the $service database"
done
if [ -n "${READER:-}" ]; then
  DB_PASSWORD=$(cat "$SECRETS_DIR/$READER/password")
  export DB_PASSWORD
  psql -v ON_ERROR_STOP=1 -v role="$READER" -f "$PROVISION_DIR/reader.sql"
  for service in $SERVICES; do
    # psql interpolates variables in scripts, not in -c commands: the grant comes on stdin.
    echo 'GRANT CONNECT ON DATABASE :"db" TO :"role";' |
      psql -v ON_ERROR_STOP=1 -v role="$READER" -v db="$service"
  done
  echo "provisioned the read-only role $READER"
fi
