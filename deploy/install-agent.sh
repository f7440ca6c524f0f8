#!/usr/bin/env bash
# Installs the agent as a systemd service on a Debian/Ubuntu or Jetson (JetPack) device.
#   sudo deploy/install-agent.sh [--server URL --token TOKEN [--device-id ID] [--re-enroll]] [--ort-lib /path/to/libonnxruntime.so]
# With --server and --token the device enrolls with the control plane (edgefleet-agent enroll, as user edgefleet), and the
# service is enabled and started (unless this run had to write a fresh /etc/edgefleet/agent.json: set the camera and the
# model first). The unit is Type=notify: it is "active" once the first frame is inferred; the start is not waited for.
# The agent is published self-contained with ONNX Runtime's CPU library from the Microsoft.ML.OnnxRuntime package
# (linux-x64 or linux-arm64). On a Jetson pass JetPack's ONNX Runtime (it has the CUDA and TensorRT providers); it is
# used in place, with the provider libraries beside it, and must be at least the version the agent was built against.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ort_lib=""
server=""
token=""
device_id=""
re_enroll=0
usage() { echo "usage: $0 [--server URL --token TOKEN [--device-id ID] [--re-enroll]] [--ort-lib PATH]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --ort-lib) [ $# -ge 2 ] || usage; ort_lib="$2"; shift 2 ;;
    --server) [ $# -ge 2 ] || usage; server="$2"; shift 2 ;;
    --token) [ $# -ge 2 ] || usage; token="$2"; shift 2 ;;
    --device-id) [ $# -ge 2 ] || usage; device_id="$2"; shift 2 ;;
    --re-enroll) re_enroll=1; shift ;;
    *) usage ;;
  esac
done
if { [ -n "$server" ] && [ -z "$token" ]; } || { [ -z "$server" ] && [ -n "$token" ]; }; then
  echo "--server and --token go together" >&2; exit 2
fi
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
# The unit's StateDirectory= would create it at the first start; enrollment writes into it before that.
install -d -o edgefleet -g edgefleet -m 0700 /var/lib/edgefleet
fresh_config=0
if [ ! -f /etc/edgefleet/agent.json ]; then
  fresh_config=1
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

if [ -n "$server" ]; then
  enroll=(/opt/edgefleet/agent/edgefleet-agent enroll --server "$server" --token "$token" --config /etc/edgefleet/agent.json)
  [ -z "$device_id" ] || enroll+=(--device-id "$device_id")
  [ "$re_enroll" -eq 0 ] || enroll+=(--force)
  if [ "$re_enroll" -eq 0 ] && [ -f /var/lib/edgefleet/identity.json ]; then
    echo "already enrolled (/var/lib/edgefleet/identity.json); pass --re-enroll for a new identity"
  else
    # As the service's user, so the identity and broker login (mode 0600) belong to it.
    runuser -u edgefleet -- env ORT_DISABLE_TELEMETRY=1 "${enroll[@]}"
  fi
  systemctl enable edgefleet-agent
  if [ "$fresh_config" -eq 1 ]; then
    echo "enrolled; set the camera and the model in /etc/edgefleet/agent.json, then: systemctl start edgefleet-agent"
  else
    # --no-block: with Type=notify the start completes at the first inferred frame, which can take minutes (TensorRT).
    systemctl restart --no-block edgefleet-agent
    echo "started; follow it with: systemctl status edgefleet-agent; journalctl -u edgefleet-agent -f"
  fi
else
  echo "installed; enroll with: sudo -u edgefleet /opt/edgefleet/agent/edgefleet-agent enroll --server URL --token TOKEN --config /etc/edgefleet/agent.json"
  echo "then start with: systemctl enable --now edgefleet-agent"
fi
