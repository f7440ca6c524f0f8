#!/usr/bin/env bash
# Installs everything EdgeFleet needs on a Debian/Ubuntu machine. Idempotent and non-interactive:
# it skips what is already present and uses sudo only when not root.
#
#   deploy/bootstrap.sh            Debian packages + NuGet restore (which brings ONNX Runtime's native libraries)
#   deploy/bootstrap.sh --no-restore   skip the NuGet restore (used by the systemd installer)
#   deploy/bootstrap.sh --arm64-emulation   also what the arm64 agent needs to run under qemu-user on an
#                                       x64 machine (used by test.sh; everything stays under .edgefleet/)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
restore=1
arm64_emulation=0
for arg in "$@"; do
  case "$arg" in
    --no-restore) restore=0 ;;
    --arm64-emulation) arm64_emulation=1 ;;
    *) echo "bootstrap: unknown argument '$arg' (known: --no-restore, --arm64-emulation)" >&2; exit 2 ;;
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
packages=(ffmpeg mosquitto mosquitto-clients chromium postgresql
          gstreamer1.0-tools gstreamer1.0-plugins-base util-linux sqlite3 gcc libc6-dev ca-certificates)
missing=()
packages+=(prometheus) # promtool lints /metrics in the tests, which also scrape it with a real Prometheus
packages+=(curl jq openssl) # the README's "Verifying a model by hand" commands, which a test runs as written
# node and npm build the control plane's dashboard (npm ci + esbuild at build time); Debian's are enough (node >= 18).
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
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
# --- arm64 under emulation (--arm64-emulation) ------------------------------------------------------
# The tests run the linux-arm64 agent (dotnet publish -r linux-arm64) under qemu-user on x64. Nothing of this touches the
# host: no package is installed, no dpkg --add-architecture, no binfmt_misc registration, no root needed. A private
# apt state (its own sources list, lists, cache and an empty dpkg status, under .edgefleet/arm64/apt) fetches Debian's
# qemu-user-static (only its qemu-aarch64-static is kept) and the arm64 C/C++ runtime, and dpkg-deb unpacks them into
# .edgefleet/arm64-sysroot; the tests call `qemu-aarch64-static -L <sysroot>` explicitly. No ICU: every EdgeFleet
# program runs with InvariantGlobalization.
arm64_packages=(libc6 libstdc++6 libgcc-s1 libssl3 zlib1g)
arm64_dir="$repo/.edgefleet/arm64"
arm64_sysroot="$repo/.edgefleet/arm64-sysroot"
arm64_suite="${EDGEFLEET_ARM64_SUITE:-bookworm}"
arm64_mirror="${EDGEFLEET_ARM64_MIRROR:-http://deb.debian.org/debian}"
if [ "$arm64_emulation" -eq 1 ]; then
  case "$(uname -m)" in
    aarch64|arm64) log "arm64 host: the arm64 agent runs natively, no emulation needed" ;;
    x86_64)
      wanted="$arm64_suite ${arm64_packages[*]} qemu-user-static"
      if [ -x "$arm64_dir/qemu-aarch64-static" ] && [ "$(cat "$arm64_sysroot/.edgefleet-sysroot" 2>/dev/null)" = "$wanted" ]; then
        log "arm64 emulation present ($arm64_sysroot)"
      else
        log "fetching qemu-user-static and the arm64 runtime ($arm64_suite: ${arm64_packages[*]}) into .edgefleet/"
        started=$SECONDS
        keyring=/usr/share/keyrings/debian-archive-keyring.gpg
        [ -f "$keyring" ] || { log "$keyring is missing: install debian-archive-keyring"; exit 1; }
        apt_dir="$arm64_dir/apt"
        rm -rf "$apt_dir" "$arm64_sysroot".*   # what an interrupted run left
        mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/sources.list.d" "$apt_dir/preferences.d"
        : > "$apt_dir/status"
        echo "deb [arch=amd64,arm64 signed-by=$keyring] $arm64_mirror $arm64_suite main" > "$apt_dir/sources.list"
        # The host's apt.conf.d still applies (proxies, mirror settings); its sources, lists, cache and dpkg database do not.
        apt_private=(-q -o APT::Architecture=amd64 -o APT::Architectures::=amd64 -o APT::Architectures::=arm64
          -o Dir::State="$apt_dir" -o Dir::State::Lists="$apt_dir/lists" -o Dir::State::status="$apt_dir/status"
          -o Dir::Cache="$apt_dir/cache" -o Dir::Etc::sourcelist="$apt_dir/sources.list"
          -o Dir::Etc::sourceparts="$apt_dir/sources.list.d" -o Dir::Etc::preferencesparts="$apt_dir/preferences.d"
          -o Acquire::Languages=none -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false)
        # As root apt downloads as _apt, which cannot write here; it would fall back with a warning.
        if [ "$(id -u)" -eq 0 ]; then apt_private+=(-o APT::Sandbox::User=root); fi
        apt-get "${apt_private[@]}" update >/dev/null
        qualified=(); for p in "${arm64_packages[@]}"; do qualified+=("$p:arm64"); done
        apt-get "${apt_private[@]}" install -y -d --no-install-recommends "${qualified[@]}" qemu-user-static:amd64 >/dev/null
        staging="$(mktemp -d "$repo/.edgefleet/arm64-sysroot.XXXXXX")"
        for deb in "$apt_dir"/cache/archives/*_arm64.deb; do dpkg-deb -x "$deb" "$staging"; done
        dpkg-deb --fsys-tarfile "$apt_dir"/cache/archives/qemu-user-static_*_amd64.deb | tar -x -C "$staging" ./usr/bin/qemu-aarch64-static
        mv "$staging/usr/bin/qemu-aarch64-static" "$arm64_dir/qemu-aarch64-static"
        echo "$wanted" > "$staging/.edgefleet-sysroot"
        chmod 755 "$staging"
        rm -rf "$arm64_sysroot" "$apt_dir"
        mv "$staging" "$arm64_sysroot"
        log "arm64 emulation ready in $((SECONDS - started)) s: $arm64_dir/qemu-aarch64-static -L $arm64_sysroot"
      fi
      # qemu-user passes the host's /proc/cpuinfo through; ONNX Runtime's cpuinfo (arm64 build) finds no ARM core in an
      # x86 one and, on some hosts (an Intel Xeon VM here, not an AMD EPYC one), dereferences NULL while creating its
      # environment. qemu maps the guest's open() of /proc/cpuinfo to <sysroot>/proc/cpuinfo when that exists: give it
      # what a Jetson Orin (Cortex-A78AE) shows, one entry per host CPU.
      mkdir -p "$arm64_sysroot/proc"
      cpus=$(getconf _NPROCESSORS_CONF 2>/dev/null || nproc --all)
      for ((i = 0; i < cpus; i++)); do
        printf 'processor\t: %d\nBogoMIPS\t: 62.50\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\n' "$i"
        printf 'CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd42\nCPU revision\t: 1\n\n'
      done > "$arm64_sysroot/proc/cpuinfo.new"
      mv "$arm64_sysroot/proc/cpuinfo.new" "$arm64_sysroot/proc/cpuinfo"
      ;;
    *) log "arm64 emulation: unsupported host architecture $(uname -m) (x86_64 or aarch64)"; exit 1 ;;
  esac
fi

log "done"
