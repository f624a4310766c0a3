#!/usr/bin/env bash
# Serve JupyterLab on 127.0.0.1 only, root (BPF needs it), with a token.
# The token is kept in /var/lib/ebpf-lab/token (mode 600) so that the URL
# stays the same across restarts; used by ./lab and by the VM's service.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv="${EBPF_LAB_VENV:-$here/.venv}"
port=8888
[ "${1:-}" = "--port" ] && port=$2
state=/var/lib/ebpf-lab
mkdir -p "$state"; chmod 700 "$state"
if [ ! -s "$state/token" ]; then
    (umask 077; "$venv/bin/python" -c 'import secrets; print(secrets.token_hex(24))' > "$state/token")
fi
token=$(cat "$state/token")
echo "ebpf-lab: JupyterLab at http://127.0.0.1:$port/lab?token=$token"
exec "$venv/bin/jupyter" lab --allow-root --no-browser \
    --ServerApp.ip=127.0.0.1 --ServerApp.port="$port" --ServerApp.port_retries=0 \
    --IdentityProvider.token="$token" \
    --ServerApp.root_dir="$here/notebooks"
