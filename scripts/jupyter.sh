#!/usr/bin/env bash
# Serve JupyterLab on 127.0.0.1 only, root (BPF needs it), with a token.
# The token is kept in /var/lib/ebpf-lab/token (mode 600) so that the URL
# stays the same across restarts; used by ./lab and by the VM's service.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv="${EBPF_LAB_VENV:-$here/.venv}"
port=8888
# --ip: the one address to listen on. Loopback unless a VM provider's NAT
# forwarding needs the guest's NAT-only address (VirtualBox: 10.0.2.15, see
# the Vagrantfile). Never a wildcard: a root JupyterLab open to a network is a
# root shell for anyone who reaches it.
ip=127.0.0.1
while [ $# -gt 0 ]; do
    case "$1" in
        --port) port=$2; shift 2 ;;
        --ip) ip=$2; shift 2 ;;
        *) echo "jupyter.sh: unknown option '$1' (usage: jupyter.sh [--port N] [--ip ADDR])" >&2; exit 2 ;;
    esac
done
case "$ip" in
    ""|0.0.0.0|::|"*"|"[::]") echo "jupyter.sh: refusing to listen on every address ('$ip'): give one address, e.g. 127.0.0.1" >&2; exit 2 ;;
esac
state=/var/lib/ebpf-lab
mkdir -p "$state"; chmod 700 "$state"
if [ ! -s "$state/token" ]; then
    (umask 077; "$venv/bin/python" -c 'import secrets; print(secrets.token_hex(24))' > "$state/token")
fi
token=$(cat "$state/token")
# A lesson opens on the lesson: no "get notified about Jupyter news?" pop-up and
# no update check. JupyterLab asks while its setting fetchNews is "none",
# whatever the server does, so the lab's defaults go where JupyterLab reads
# administrator overrides (<app dir>/settings/overrides.d/); the server options
# below make sure nothing is fetched from the internet either. A learner can
# still change both in Settings > Notifications.
settings=$("$venv/bin/python" -c 'from jupyterlab.commands import get_app_dir; print(get_app_dir())')/settings/overrides.d
mkdir -p "$settings"
cmp -s "$here/scripts/jupyterlab-overrides.json" "$settings/ebpf-lab.json" \
    || cp "$here/scripts/jupyterlab-overrides.json" "$settings/ebpf-lab.json"
echo "ebpf-lab: JupyterLab at http://$ip:$port/lab?token=$token"
exec "$venv/bin/jupyter" lab --allow-root --no-browser \
    --ServerApp.ip="$ip" --ServerApp.port="$port" --ServerApp.port_retries=0 \
    --IdentityProvider.token="$token" \
    --LabApp.news_url=None --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate \
    --ServerApp.root_dir="$here/notebooks"
