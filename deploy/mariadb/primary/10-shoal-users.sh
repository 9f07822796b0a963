#!/bin/sh
# MariaDB primary, first start only (the image runs /docker-entrypoint-initdb.d/ on an empty datadir):
# the application's account and the replicas' account.
#
# The application may do anything on the shoal_* databases and nothing else: without global
# privileges it cannot write to a read-only replica. Neither account is written to the binary log
# (each replica makes its own), so replication starts from an empty GTID position.
set -eu
: "${SHOAL_DB_PASSWORD:?}" "${SHOAL_DB_REPLICATION_PASSWORD:?}" "${MARIADB_ROOT_PASSWORD:?}"

mariadb --user=root --password="$MARIADB_ROOT_PASSWORD" <<SQL
SET SESSION sql_log_bin = 0;
CREATE USER IF NOT EXISTS 'shoal'@'%' IDENTIFIED BY '${SHOAL_DB_PASSWORD}';
GRANT ALL PRIVILEGES ON \`shoal\\_%\`.* TO 'shoal'@'%';
CREATE USER IF NOT EXISTS 'replicator'@'%' IDENTIFIED BY '${SHOAL_DB_REPLICATION_PASSWORD}';
GRANT REPLICATION SLAVE ON *.* TO 'replicator'@'%';
SQL
