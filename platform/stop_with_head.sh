#!/usr/bin/env bash
# The rest of `ray down` for platform/cluster.local.yaml, started in the background on the head by
# its start commands. Ray's local provider stops Ray on the head only. Once that has happened (the
# head's GCS server is gone), this stops Ray on every worker, over SSH with the launcher's key,
# and the MLflow server that the head started. Its log: /tmp/depthhints-teardown.log on the head.
set -u
while pgrep -u "$(id -u)" -x gcs_server >/dev/null; do sleep 1; done
echo "$(date -Is) Ray stopped on the head: stopping it on the workers, and the MLflow server"
WORKERS=$(~/depth-hints/.venv/bin/python -c \
    'import sys, yaml; print(*yaml.safe_load(open(sys.argv[1]))["provider"]["worker_ips"])' \
    ~/ray_bootstrap_config.yaml)
for ip in $WORKERS; do
    if ssh -i ~/ray_bootstrap_key.pem -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o BatchMode=yes -o ConnectTimeout=10 "$(id -un)@$ip" \
        'RAY_AUTH_MODE=token ~/depth-hints/.venv/bin/ray stop' >/dev/null 2>&1; then
        echo "$ip: Ray stopped"
    else
        echo "$ip: could not stop Ray (no SSH, or ray stop failed)"
    fi &
done
wait
if test -f /tmp/depthhints-mlflow.pid; then
    kill "$(cat /tmp/depthhints-mlflow.pid)" 2>/dev/null
    rm -f /tmp/depthhints-mlflow.pid
fi
rm -f /tmp/depthhints-teardown.pid
echo "$(date -Is) done"
