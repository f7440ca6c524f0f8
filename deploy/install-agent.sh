#!/usr/bin/env bash
# Installs the agent as a systemd service on a Debian/Ubuntu or Jetson (JetPack) device.
#   sudo deploy/install-agent.sh [--ort-lib /path/to/libonnxruntime.so.1]
# On a Jetson pass JetPack's ONNX Runtime (it has the CUDA and TensorRT providers); elsewhere the bootstrap's
# CPU build from npm is used.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ort_lib=""
while [ $# -gt 0 ]; do
  case "$1" in
    --ort-lib) ort_lib="$2"; shift 2 ;;
    *) echo "usage: $0 [--ort-lib PATH]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "run as root (sudo $0)" >&2; exit 1; }

"$repo/deploy/bootstrap.sh"
case "$(uname -m)" in x86_64) rid=linux-x64 ;; aarch64) rid=linux-arm64 ;; *) echo "unsupported $(uname -m)" >&2; exit 1 ;; esac
dotnet publish "$repo/agent/EdgeFleet.Agent" -c Release -r "$rid" --self-contained -o /opt/edgefleet/agent -v quiet

mkdir -p /opt/edgefleet/lib /etc/edgefleet
cp -L "${ort_lib:-$repo/.edgefleet/native/onnxruntime/libonnxruntime.so.1}" /opt/edgefleet/lib/libonnxruntime.so.1
id edgefleet >/dev/null 2>&1 || useradd --system --home /var/lib/edgefleet --shell /usr/sbin/nologin edgefleet
if [ ! -f /etc/edgefleet/agent.json ]; then
  cat > /etc/edgefleet/agent.json <<JSON
{
  "Agent": {
    "StateDirectory": "/var/lib/edgefleet",
    "Source": { "Uri": "v4l2:///dev/video0" },
    "Model": { "Path": "/var/lib/edgefleet/models/default.onnx" }
  }
}
JSON
  echo "wrote /etc/edgefleet/agent.json: set the camera and the model, then: systemctl enable --now edgefleet-agent"
fi
chmod 0640 /etc/edgefleet/agent.json
chgrp edgefleet /etc/edgefleet/agent.json
install -m 0644 "$repo/deploy/systemd/edgefleet-agent.service" /etc/systemd/system/edgefleet-agent.service
systemctl daemon-reload
echo "installed; start with: systemctl enable --now edgefleet-agent"
