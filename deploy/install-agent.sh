#!/usr/bin/env bash
# Installs the agent as a systemd service on a Debian/Ubuntu or Jetson (JetPack) device.
#   sudo deploy/install-agent.sh [--ort-lib /path/to/libonnxruntime.so]
# The agent is published self-contained with ONNX Runtime's CPU library from the Microsoft.ML.OnnxRuntime package
# (linux-x64 or linux-arm64). On a Jetson pass JetPack's ONNX Runtime (it has the CUDA and TensorRT providers); it is
# used in place, with the provider libraries beside it, and must be at least the version the agent was built against.
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
if [ -n "$ort_lib" ]; then
  [ -f "$ort_lib" ] || { echo "--ort-lib: $ort_lib does not exist" >&2; exit 2; }
  ort_lib="$(readlink -f "$ort_lib")"
fi

"$repo/deploy/bootstrap.sh"
case "$(uname -m)" in x86_64) rid=linux-x64 ;; aarch64) rid=linux-arm64 ;; *) echo "unsupported $(uname -m)" >&2; exit 1 ;; esac
dotnet publish "$repo/agent/EdgeFleet.Agent" -c Release -r "$rid" --self-contained -o /opt/edgefleet/agent -v quiet

mkdir -p /etc/edgefleet
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
dropin=/etc/systemd/system/edgefleet-agent.service.d
if [ -n "$ort_lib" ]; then
  mkdir -p "$dropin"
  printf '[Service]\nEnvironment=EDGEFLEET_ORT_LIB=%s\n' "$ort_lib" > "$dropin/ort-lib.conf"
  echo "the agent will load ONNX Runtime from $ort_lib (EDGEFLEET_ORT_LIB in $dropin/ort-lib.conf)"
else
  rm -f "$dropin/ort-lib.conf"
fi
systemctl daemon-reload
echo "installed; start with: systemctl enable --now edgefleet-agent"
