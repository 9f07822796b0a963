#!/bin/sh
# MariaDB replica, first start only: the application's account (reads only: the server is
# read_only and the account has no privilege to override it), then GTID replication from the
# primary, which docker-compose starts first and waits on to be healthy.
set -eu
: "${SHOAL_DB_PASSWORD:?}" "${SHOAL_DB_REPLICATION_PASSWORD:?}" "${MARIADB_ROOT_PASSWORD:?}" "${SHOAL_DB_PRIMARY_HOST:?}"

mariadb --user=root --password="$MARIADB_ROOT_PASSWORD" <<SQL
SET SESSION sql_log_bin = 0;
CREATE USER IF NOT EXISTS 'shoal'@'%' IDENTIFIED BY '${SHOAL_DB_PASSWORD}';
GRANT ALL PRIVILEGES ON \`shoal\\_%\`.* TO 'shoal'@'%';
CHANGE MASTER TO
  MASTER_HOST = '${SHOAL_DB_PRIMARY_HOST}',
  MASTER_PORT = ${SHOAL_DB_PRIMARY_PORT:-3306},
  MASTER_USER = 'replicator',
  MASTER_PASSWORD = '${SHOAL_DB_REPLICATION_PASSWORD}',
  MASTER_USE_GTID = slave_pos,
  MASTER_CONNECT_RETRY = 5;
START SLAVE;
SQL
