#!/bin/sh
# A real single-node SLURM cluster on this machine, for the slow test of the cluster path
# (tests/test_grid_runs.py::test_grid_on_a_real_single_node_slurm). Needs root and Debian's packages:
#   apt-get install -y --no-install-recommends slurmd slurmctld slurm-client munge
# Usage: sh tests/slurm/single_node.sh /tmp/slurm   then   export SLURM_CONF=/tmp/slurm/slurm.conf
# (stop it with: kill $(cat /tmp/slurm/slurmd.pid) $(cat /tmp/slurm/slurmctld.pid))
set -eu
dir=$(realpath -m "${1:-/tmp/slurm}")
mkdir -p "$dir/state" "$dir/spool" "$dir/log" /run/munge
chown munge:munge /run/munge
chown -R munge:munge /var/log/munge /var/lib/munge
pgrep -x munged >/dev/null || su -s /bin/sh munge -c "munged --num-threads=10"
node=$(slurmd -C | head -n 1 | sed 's/ UpTime.*//')  # NodeName=<host> CPUs=... RealMemory=...
host=$(hostname)
cat > "$dir/slurm.conf" <<CONF
ClusterName=mollify
SlurmctldHost=$host
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmUser=root
SlurmdUser=root
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmdSpoolDir=$dir/spool
StateSaveLocation=$dir/state
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
$node State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
slurmctld -f "$dir/slurm.conf"
slurmd -f "$dir/slurm.conf"
sleep 3
SLURM_CONF="$dir/slurm.conf" sinfo
