#!/usr/bin/env bash
# The main job: runs EdgeFleet locally with embedded defaults. Builds everything, generates sample models (no
# download), starts the control plane (SQLite + its embedded mosquitto) on http://127.0.0.1:8080, pushes the model
# to its registry, enrolls an agent and runs it on ffmpeg's test-pattern camera, printing live results and metrics
# until Ctrl-C; the agent's telemetry and drift reports flow into the control plane meanwhile.
#   ./demo.sh                       classification model on ffmpeg's moving test pattern (640x480, 30 fps)
#   ./demo.sh --task detection      a YOLO-style detector instead
#   ./demo.sh --source URI          any source: v4l2:///dev/video0, rtsp://..., file:///video.mp4?loop=true
set -euo pipefail
cd "$(dirname "$0")"
# No ONNX Runtime telemetry from anything started here (the agent also switches it off itself).
export ORT_DISABLE_TELEMETRY=1

task=classification
source="testsrc://640x480@30?frames=0"
while [ $# -gt 0 ]; do
  case "$1" in
    --task) task="$2"; shift 2 ;;
    --source) source="$2"; shift 2 ;;
    *) echo "usage: ./demo.sh [--task classification|detection] [--source URI]" >&2; exit 2 ;;
  esac
done

deploy/bootstrap.sh
dotnet build EdgeFleet.sln -c Release --nologo -v quiet -clp:ErrorsOnly

demo=".edgefleet/demo"
mkdir -p "$demo/state"
cli=controlplane/EdgeFleet.Cli/bin/Release/net10.0/edgefleet
agent=agent/EdgeFleet.Agent/bin/Release/net10.0/edgefleet-agent
controlplane=controlplane/EdgeFleet.ControlPlane/bin/Release/net10.0/edgefleet-controlplane
http_port="${EDGEFLEET_DEMO_HTTP_PORT:-8080}"
mqtt_port="${EDGEFLEET_DEMO_MQTT_PORT:-18830}"
server="http://127.0.0.1:$http_port"

# The control plane keeps its state in $demo/cp; the admin token is chosen here on its first start and kept (0600).
if [ ! -f "$demo/admin-token" ]; then
  (umask 077; head -c 32 /dev/urandom | base64 | tr -d '/+=\n' | sed 's/^/efp_demo-/' > "$demo/admin-token")
fi
export EDGEFLEET_ADMIN_TOKEN="$(cat "$demo/admin-token")"
"$controlplane" --data "$PWD/$demo/cp" --urls "$server" --mqtt-port "$mqtt_port" > "$demo/controlplane.log" 2>&1 &
cp_pid=$!
agent_pid=""
# Whatever ends the demo (Ctrl-C, a SIGTERM to this script, an error) stops the agent and the control plane with it.
# (Each kill may find its process gone already: under set -e a failing kill would end the trap before the next one.)
cleanup() {
  if [ -n "$agent_pid" ]; then kill "$agent_pid" 2>/dev/null || true; fi
  kill "$cp_pid" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM
for _ in $(seq 1 100); do
  curl -fs "$server/healthz" > /dev/null 2>&1 && break
  kill -0 "$cp_pid" 2>/dev/null || { echo "demo: the control plane did not start; see $demo/controlplane.log:" >&2; tail -n 20 "$demo/controlplane.log" >&2; exit 1; }
  sleep 0.2
done
export EDGEFLEET_SERVER="$server" EDGEFLEET_TOKEN="$EDGEFLEET_ADMIN_TOKEN"

if [ "$task" = detection ]; then
  model="$demo/detector.onnx"
  [ -f "$model" ] || "$cli" sample-model --task detection --input-size 320 --classes 80 --depth 2 --name demo-detector --out "$model"
else
  model="$demo/classifier.onnx"
  [ -f "$model" ] || "$cli" sample-model --task classification --input-size 224 --classes 1000 --depth 4 --name demo-classifier --out "$model"
fi

# Register the model (a second run finds it there already), then enroll the agent once.
"$cli" models push "$model" --json > /dev/null 2> "$demo/push.err" || grep -q "already exists" "$demo/push.err" || { cat "$demo/push.err" >&2; exit 1; }
if [ ! -f "$demo/state/identity.json" ]; then
  token="$("$cli" enroll create --tags demo --expires-in-hours 1 --max-uses 1 --json | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')"
  "$agent" enroll --server "$server" --token "$token" --device-id demo-01 --state-dir "$PWD/$demo/state"
fi

cat > "$demo/agent.json" <<JSON
{
  "Agent": {
    "StateDirectory": "$PWD/$demo/state",
    "Source": { "Uri": "$source" },
    "Model": { "Path": "$PWD/$model" },
    "Pipeline": { "ConsoleOutput": true, "ConsoleIntervalSeconds": 1 }
  }
}
JSON

cat >&2 <<EOF2
demo: control plane $server (admin token in $demo/admin-token; log $demo/controlplane.log), MQTT on port $mqtt_port
demo: in another terminal: export EDGEFLEET_SERVER=$server EDGEFLEET_TOKEN=\$(cat $demo/admin-token)
demo:   $cli devices list    $cli models list    curl -H "Authorization: Bearer \$EDGEFLEET_TOKEN" $server/metrics
demo: running the agent ($task model, source $source); Ctrl-C to stop
EOF2
"$agent" run --config "$demo/agent.json" &
agent_pid=$!
wait "$agent_pid"
