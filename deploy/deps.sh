# shellcheck shell=bash
# deploy/deps.sh - the Debian packages the build needs, and installing the missing ones.
# Sourced by deploy/quickstart.sh and tests/run.sh (which adds the test-only packages).

# build dependencies (Debian 12 -dev packages)
CM_BUILD_PKGS=(cmake pkg-config gcc libc6-dev make
               libmicrohttpd-dev libcurl4-openssl-dev libsqlite3-dev libcyaml-dev libyaml-dev
               libcjson-dev libsodium-dev libcrypt-dev libxxhash-dev)

# cm_install_missing NAME PKG...: apt-get installs the packages not installed yet (as root,
# or through sudo when available); exits with a clear message when it cannot.
cm_install_missing() {
    local who=$1 p missing=()
    shift
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=()
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null; then
            sudo=(sudo)
        else
            echo "$who: missing packages: ${missing[*]} (run as root, or: apt-get install ${missing[*]})" >&2
            exit 1
        fi
    fi
    echo "$who: installing ${missing[*]}"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}
