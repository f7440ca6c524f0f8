#!/usr/bin/env bash
# Installs everything EdgeFleet needs on a Debian/Ubuntu machine. Idempotent and non-interactive:
# it skips what is already present and uses sudo only when not root.
#
#   deploy/bootstrap.sh            Debian packages + NuGet restore (which brings ONNX Runtime's native libraries)
#   deploy/bootstrap.sh --no-restore   skip the NuGet restore (used by the systemd installer)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
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
# gcc and libc6-dev: the ONNX Runtime start-up tests compile a stand-in for an old native library.
packages=(ffmpeg mosquitto mosquitto-clients libmosquitto1 chromium postgresql
          gstreamer1.0-tools gstreamer1.0-plugins-base util-linux sqlite3 gcc libc6-dev ca-certificates)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
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

# ONNX Runtime's native libraries (linux-x64 and linux-arm64) come with the Microsoft.ML.OnnxRuntime NuGet package:
# the restore below fetches them and the build copies them next to the agent. Nothing is downloaded from elsewhere.

# --- NuGet restore ---------------------------------------------------------------------------------
if [ "$restore" -eq 1 ]; then
  log "restoring NuGet packages"
  dotnet restore "$repo/EdgeFleet.sln" --verbosity quiet -nologo
fi
log "done"
