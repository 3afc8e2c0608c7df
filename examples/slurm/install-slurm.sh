#!/usr/bin/env bash
# Install Slurm's Debian packages (controller, node daemon, client commands) and munge, as root.
# Does nothing when they are already there. Used by tests/test_slurm.py to bring up a one-node
# Slurm on localhost; on a real cluster your administrators have done this for you.
set -euo pipefail
have() { command -v "$1" >/dev/null 2>&1; }
if have slurmctld && have slurmd && have sbatch && have munged; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "install-slurm.sh: needs root to install slurm-wlm and munge" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# No recommends: the bare daemons and clients (9 packages), not the 40 of slurm-wlm's recommends.
apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
