#!/usr/bin/env bash
# The main job: runs EdgeFleet locally with embedded defaults. Builds everything, generates sample models (no
# download), and runs the agent on ffmpeg's test-pattern camera, printing live results and metrics until Ctrl-C.
#   ./demo.sh                       classification model on ffmpeg's moving test pattern (640x480, 30 fps)
#   ./demo.sh --task detection      a YOLO-style detector instead
#   ./demo.sh --source URI          any source: v4l2:///dev/video0, rtsp://..., file:///video.mp4?loop=true
set -euo pipefail
cd "$(dirname "$0")"

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

if [ "$task" = detection ]; then
  model="$demo/detector.onnx"
  [ -f "$model" ] || "$cli" sample-model --task detection --input-size 320 --classes 80 --depth 2 --name demo-detector --out "$model"
else
  model="$demo/classifier.onnx"
  [ -f "$model" ] || "$cli" sample-model --task classification --input-size 224 --classes 1000 --depth 4 --name demo-classifier --out "$model"
fi

cat > "$demo/agent.json" <<JSON
{
  "Agent": {
    "DeviceId": "demo-01",
    "StateDirectory": "$PWD/$demo/state",
    "Source": { "Uri": "$source" },
    "Model": { "Path": "$PWD/$model" },
    "Pipeline": { "ConsoleOutput": true, "ConsoleIntervalSeconds": 1 }
  }
}
JSON

echo "demo: running the agent ($task model, source $source); Ctrl-C to stop" >&2
exec "$agent" run --config "$demo/agent.json"
