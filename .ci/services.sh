#!/usr/bin/env bash
# Make sure the local services telmon's tests talk to are up; start any that is down.
# Each check is quick; a start waits until the service answers (bounded).
set -u

up() { # host port
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

wait_up() { # name host port
  for _ in $(seq 1 60); do up "$2" "$3" && { echo "services: $1 is up"; return 0; }; sleep 1; done
  echo "services: $1 did not come up on $2:$3" >&2
  return 1
}

ensure() { # name host port start-command...
  local name=$1 host=$2 port=$3; shift 3
  if up "$host" "$port"; then echo "services: $name is up"; return 0; fi
  echo "services: $name is down; starting it"
  "$@" >/dev/null 2>&1 || true
  wait_up "$name" "$host" "$port"
}

status=0
if command -v pg_ctlcluster >/dev/null; then
  ensure postgresql 127.0.0.1 5432 bash -c 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start' || status=1
fi
if command -v redis-server >/dev/null; then
  ensure redis 127.0.0.1 6379 redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log || status=1
fi
if command -v rabbitmq-server >/dev/null; then
  ensure rabbitmq 127.0.0.1 5672 rabbitmq-server -detached || status=1
fi
exit $status
