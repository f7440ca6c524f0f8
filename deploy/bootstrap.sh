#!/usr/bin/env bash
# Installs everything EdgeFleet needs on a Debian/Ubuntu machine. Idempotent and non-interactive:
# it skips what is already present and uses sudo only when not root.
#
#   deploy/bootstrap.sh            Debian packages + ONNX Runtime native library + NuGet restore
#   deploy/bootstrap.sh --no-restore   skip the NuGet restore (used by the systemd installer)
#
# Environment:
#   EDGEFLEET_ORT_VERSION   ONNX Runtime version to fetch from npm (default 1.30.0)
#   EDGEFLEET_NATIVE_DIR    where the native library goes (default <repo>/.edgefleet/native)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ort_version="${EDGEFLEET_ORT_VERSION:-1.30.0}"
native_dir="${EDGEFLEET_NATIVE_DIR:-$repo/.edgefleet/native}"
restore=1
for arg in "$@"; do
  case "$arg" in
    --no-restore) restore=0 ;;
    *) echo "bootstrap: unknown argument '$arg' (known: --no-restore)" >&2; exit 2 ;;
  esac
done

log() { printf 'bootstrap: %s\n' "$*" >&2; }
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo -n "$@" || { log "'$*' needs root; run: sudo $*"; exit 1; }
  else log "'$*' needs root and sudo is not installed"; exit 1
  fi
}

# --- Debian packages -------------------------------------------------------------------------------
packages=(ffmpeg mosquitto mosquitto-clients chromium postgresql
          gstreamer1.0-tools gstreamer1.0-plugins-base util-linux sqlite3 npm ca-certificates)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  # nodejs from another repository may already provide npm; do not fight it.
  if command -v npm >/dev/null 2>&1; then
    filtered=(); for p in "${missing[@]}"; do [ "$p" = npm ] || filtered+=("$p"); done
    missing=("${filtered[@]}")
  fi
fi
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "Debian packages present"
fi
# The Debian postgresql package starts a cluster on port 5432; the tests run their own servers and never use it.

# --- .NET SDK --------------------------------------------------------------------------------------
if ! command -v dotnet >/dev/null 2>&1; then
  log "the .NET 10 SDK is missing: install it (https://learn.microsoft.com/dotnet/core/install/linux-debian)"
  log "or run dotnet-install.sh --channel 10.0, then re-run this script"
  exit 1
fi

# --- ONNX Runtime native library (from the npm package, which carries x64 and arm64 builds) ---------
case "$(uname -m)" in
  x86_64) ort_arch=x64 ;;
  aarch64|arm64) ort_arch=arm64 ;;
  *) log "unsupported CPU architecture $(uname -m): ONNX Runtime's npm package has x64 and arm64 only"; exit 1 ;;
esac
ort_dir="$native_dir/onnxruntime-$ort_version/linux-$ort_arch"
if [ -f "$ort_dir/libonnxruntime.so.1" ]; then
  log "ONNX Runtime $ort_version present at $ort_dir"
else
  log "fetching ONNX Runtime $ort_version from npm (onnxruntime-node, --ignore-scripts)"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm install --silent --no-save --no-audit --no-fund --ignore-scripts "onnxruntime-node@$ort_version" >/dev/null)
  src="$work/node_modules/onnxruntime-node/bin/napi-v6/linux/$ort_arch"
  if [ ! -f "$src/libonnxruntime.so.1" ]; then
    log "libonnxruntime.so.1 not found in onnxruntime-node@$ort_version (looked in $src)"; exit 1
  fi
  mkdir -p "$ort_dir"
  cp "$src"/libonnxruntime.so.1* "$ort_dir/"
  # Keep the licence with the binary we redistribute.
  cp "$work/node_modules/onnxruntime-node/LICENSE" "$ort_dir/" 2>/dev/null || true
  rm -rf "$work"; trap - EXIT
  log "ONNX Runtime $ort_version installed at $ort_dir"
fi
ln -sfn "onnxruntime-$ort_version/linux-$ort_arch" "$native_dir/onnxruntime"

# --- NuGet restore ---------------------------------------------------------------------------------
if [ "$restore" -eq 1 ]; then
  log "restoring NuGet packages"
  dotnet restore "$repo/EdgeFleet.sln" --verbosity quiet -nologo
fi
log "done"
