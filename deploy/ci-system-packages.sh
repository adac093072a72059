#!/bin/sh
# Install the Debian packages whose binaries the tests start, only if they are missing:
#   prometheus             -> promtool (tests/test_alert_rules.py)
#   prometheus-pushgateway -> /usr/bin/prometheus-pushgateway (tests/test_metrics.py)
#   chromium               -> headless browser (tests/test_report_html.py opens the HTML report)
#   postgresql             -> initdb/postgres/psql (tests/test_jdbc.py starts a server on 127.0.0.1)
#   slurm-wlm, munge       -> slurmctld, slurmd, sbatch, munged (tests/test_slurm.py, make test-slow)
# Idempotent and quiet: prints nothing when all is there; prints apt's output only when it
# fails. Runs as root, or through `sudo -n` (no password prompt) otherwise.
# On a host running systemd, the services these packages start on install are stopped and
# disabled again (the tests start their own servers on 127.0.0.1).
set -eu

missing=""
command -v promtool >/dev/null 2>&1 || missing="$missing prometheus"
if [ ! -x /usr/bin/prometheus-pushgateway ] && ! command -v prometheus-pushgateway >/dev/null 2>&1; then
    missing="$missing prometheus-pushgateway"
fi
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! command -v psql >/dev/null 2>&1; then
    missing="$missing postgresql"
fi
[ -x /usr/sbin/slurmctld ] && [ -x /usr/sbin/slurmd ] && command -v sbatch >/dev/null 2>&1 || missing="$missing slurm-wlm"
[ -x /usr/sbin/munged ] || missing="$missing munge"
[ -z "$missing" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ci-system-packages: apt-get not found; install$missing by hand" >&2
    exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1; then
    as_root="sudo -n"
else
    echo "ci-system-packages: need root or sudo to install$missing" >&2
    exit 1
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
run() {
    if ! $as_root env DEBIAN_FRONTEND=noninteractive "$@" >"$log" 2>&1; then
        cat "$log" >&2
        echo "ci-system-packages: failed: $*" >&2
        exit 1
    fi
}
run apt-get update -qq
# shellcheck disable=SC2086  # $missing is a list of package names
run apt-get install -y -qq --no-install-recommends $missing

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    for pkg in $missing; do
        case $pkg in
            slurm-wlm) services="slurmctld slurmd" ;;
            *) services=$pkg ;;
        esac
        for service in $services; do
            $as_root systemctl disable --now "$service.service" >/dev/null 2>&1 || true
        done
    done
fi
