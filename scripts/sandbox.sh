#!/usr/bin/env bash
# The sandbox Asterisk: a real Asterisk 22 configured from asterisk-conf/ for the engine and the
# end-to-end tests.
#
#   scripts/sandbox.sh up        build (once) and start it, or reload its configuration if running
#   scripts/sandbox.sh down      stop it and unmount what 'up' mounted (idempotent)
#   scripts/sandbox.sh status    print running/stopped; exit 0 when running, 3 when stopped
#   scripts/sandbox.sh logs [N]  last N lines (default 50) of the Asterisk logs
#   scripts/sandbox.sh rx CMD    run an Asterisk CLI command, e.g. rx "pjsip show endpoints"
#   scripts/sandbox.sh build     only build the chroot (once), do not start it
#
# Where a system Asterisk is installed (command -v asterisk), it is used: the configuration is
# copied into /etc/asterisk (the originals are saved once to /etc/asterisk.orig-ivr).  Otherwise
# a Debian-unstable chroot with Asterisk is built once under .sandbox/root with debootstrap,
# from the Debian mirror this machine's apt already uses.
#
# Environment:
#   IVR_ARI_USER             ARI user name (default: ivr)
#   IVR_ARI_PASSWORD         ARI password (default: .sandbox/ari-password, generated once)
#   IVR_SANDBOX_BIND         address the SIP transport listens on (default 127.0.0.1); 0.0.0.0 or
#                            a LAN address lets softphones on the LAN register as tester1..3
#   IVR_SANDBOX_ARI_BIND     address ARI/HTTP listens on (default 127.0.0.1)
#   IVR_SANDBOX_MODE         chroot | system (default: system when an asterisk command exists)
#   IVR_SANDBOX_MIRROR       Debian mirror for the chroot (default: taken from apt's sources)
#   IVR_SANDBOX_BOOT_TIMEOUT seconds to wait for Asterisk to boot (default 60)
set -euo pipefail
shopt -u patsub_replacement 2>/dev/null || true   # '&' in ${x//a/b} replacements stays literal

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE="$REPO/.sandbox"
ROOT="$STATE/root"
MARKER="$ROOT/.ivr-sandbox-complete"
CONF_SRC="$REPO/asterisk-conf"
PROMPTS_AUDIO="$REPO/prompts/audio"
FG_LOG=/var/log/asterisk-fg.log          # inside the chroot
BOOT_TIMEOUT=${IVR_SANDBOX_BOOT_TIMEOUT:-60}
TESTERS=(tester1 tester2 tester3)

say() { echo "sandbox: $*"; }
die() { echo "sandbox: $*" >&2; exit 1; }

need_root() {
    [ "$(id -u)" -eq 0 ] || die "this needs root (chroot, mounts, starting Asterisk); run it as root"
}

mode() {
    case "${IVR_SANDBOX_MODE:-}" in
        chroot|system) echo "$IVR_SANDBOX_MODE" ;;
        "") if command -v asterisk >/dev/null 2>&1; then echo system; else echo chroot; fi ;;
        *) die "IVR_SANDBOX_MODE must be 'chroot' or 'system', not '$IVR_SANDBOX_MODE'" ;;
    esac
}

# Run a command where Asterisk lives (inside the chroot, or on the host).
in_ast() {
    if [ "$(mode)" = chroot ]; then
        chroot "$ROOT" "$@"
    else
        "$@"
    fi
}

ast_rx() { in_ast asterisk -rx "$1"; }

is_running() {
    if [ "$(mode)" = chroot ] && [ ! -f "$MARKER" ]; then
        return 1
    fi
    ast_rx "core show version" >/dev/null 2>&1
}

# ---------------------------------------------------------------------------------------------
# Secrets: never in the repository; read from the environment or generated once into .sandbox/.

random_secret() { head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24; }

check_secret() {  # name value
    [ -n "$2" ] || die "$1 is empty"
    if [[ $2 == *[[:space:]]* || $2 == *";"* || $2 == *"["* || $2 == *"]"* ]]; then
        die "$1 must not contain spaces, ';', '[' or ']' (Asterisk config syntax)"
    fi
}

ari_password() {
    if [ -n "${IVR_ARI_PASSWORD:-}" ]; then
        printf '%s' "$IVR_ARI_PASSWORD"
        return
    fi
    local f="$STATE/ari-password"
    if [ ! -s "$f" ]; then
        mkdir -p "$STATE"
        (umask 077; random_secret > "$f")
        say "generated the ARI password into $f" >&2
    fi
    chmod 600 "$f"
    tr -d '\r\n' < "$f"
}

# .sandbox/tester-passwords holds one "testerN PASSWORD" line per softphone account.
tester_password() {
    local f="$STATE/tester-passwords" t=$1 pw
    mkdir -p "$STATE"
    [ -f "$f" ] || (umask 077; : > "$f")
    chmod 600 "$f"
    pw=$(awk -v t="$t" '$1 == t { print $2; exit }' "$f")
    if [ -z "$pw" ]; then
        pw=$(random_secret)
        echo "$t $pw" >> "$f"
    fi
    printf '%s' "$pw"
}

# ---------------------------------------------------------------------------------------------
# The Debian mirror apt already uses: the first main-archive URI (".../debian") in
# /etc/apt/sources.list and /etc/apt/sources.list.d/*.list|*.sources — not debian-security,
# not third-party repositories.

debian_mirror() {
    if [ -n "${IVR_SANDBOX_MIRROR:-}" ]; then
        echo "$IVR_SANDBOX_MIRROR"
        return
    fi
    local files=() f uri
    [ -f /etc/apt/sources.list ] && files+=(/etc/apt/sources.list)
    for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && files+=("$f")
    done
    for f in "${files[@]}"; do
        if [[ $f == *.sources ]]; then
            # deb822: stanzas separated by blank lines; take URIs of stanzas with Types: deb.
            uri=$(awk '
                function flush() { if (types ~ /(^|[ \t])deb([ \t]|$)/ && enabled != "no") print uris; types=""; uris=""; enabled="" }
                /^[ \t]*#/ { next }
                /^[ \t]*$/ { flush(); next }
                tolower($1) == "types:" { sub(/^[^:]*:[ \t]*/, ""); types=$0; next }
                tolower($1) == "uris:" { sub(/^[^:]*:[ \t]*/, ""); uris=$0; next }
                tolower($1) == "enabled:" { enabled=tolower($2); next }
                END { flush() }' "$f" | tr ' \t' '\n\n' | debian_uri_filter | head -n1)
        else
            # one-line format: deb [options] URI suite components
            uri=$(awk '
                /^[ \t]*#/ { next }
                $1 == "deb" { i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ } print $i }' "$f" \
                | debian_uri_filter | head -n1)
        fi
        if [ -n "$uri" ]; then
            echo "${uri%/}"
            return
        fi
    done
    die "found no Debian mirror in /etc/apt/sources.list{,.d}; set IVR_SANDBOX_MIRROR=http://<mirror>/debian"
}

debian_uri_filter() {
    grep -E '^(https?|ftp)://[^ ]+/debian/?$' | grep -v -E 'debian-security|security\.debian\.org' || true
}

# ---------------------------------------------------------------------------------------------
# The chroot, built once.

install_if_missing() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if ((${#missing[@]})); then
        say "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

build_chroot() {
    [ -f "$MARKER" ] && return 0
    install_if_missing debootstrap
    local mirror tmp
    mirror=$(debian_mirror)
    if [ -d "$ROOT" ]; then
        say "removing an incomplete chroot at $ROOT"
        unmount_all
        [ -z "$(chroot_mounts)" ] || die "cannot unmount $(chroot_mounts | tr '\n' ' '); not removing $ROOT"
        rm -rf --one-file-system "$ROOT"
    fi
    mkdir -p "$STATE"
    rm -rf --one-file-system "$STATE"/root.build.* 2>/dev/null || true
    tmp=$(mktemp -d "$STATE/root.build.XXXXXX")
    say "building the Asterisk chroot from $mirror (once; takes a minute or two)"
    if ! debootstrap --variant=minbase \
            --include=asterisk,asterisk-modules,asterisk-config,ca-certificates \
            sid "$tmp" "$mirror" > "$STATE/debootstrap.log" 2>&1; then
        tail -n 20 "$STATE/debootstrap.log" >&2
        die "debootstrap failed (full log: $STATE/debootstrap.log)"
    fi
    chroot "$tmp" asterisk -V > /dev/null || die "the chroot was built but has no working asterisk"
    mv "$tmp" "$ROOT"
    date -u +%FT%TZ > "$MARKER"
    say "chroot ready: $(chroot "$ROOT" asterisk -V)"
}

write_hosts() {
    # Asterisk resolves the host name at boot and for every call: without it in /etc/hosts each
    # call waits for a DNS timeout.
    local host
    host=$(hostname)
    {
        echo "127.0.0.1 localhost $host"
        echo "::1 localhost ip6-localhost ip6-loopback"
    } > "$ROOT/etc/hosts"
    cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
}

is_mounted() { mountpoint -q "$1" 2>/dev/null; }

mount_chroot() {
    is_mounted "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
    mkdir -p "$ROOT/run/asterisk"
}

# Mount points under the chroot, deepest first.
chroot_mounts() {
    [ -d "$ROOT" ] || return 0
    awk -v root="$ROOT" '$2 == root || index($2, root "/") == 1 { print $2 }' /proc/self/mounts | sort -r
}

unmount_all() {
    local m
    for m in $(chroot_mounts); do
        umount "$m" 2>/dev/null || umount -l "$m"
    done
}

# ---------------------------------------------------------------------------------------------
# Configuration: asterisk-conf/* rendered with secrets and bind addresses.

render_conf() {  # destination directory
    local dest=$1 sip_bind ari_bind ari_user ari_pw media f content t name
    sip_bind=${IVR_SANDBOX_BIND:-127.0.0.1}
    ari_bind=${IVR_SANDBOX_ARI_BIND:-127.0.0.1}
    ari_user=${IVR_ARI_USER:-ivr}
    ari_pw=$(ari_password)
    check_secret "the ARI password" "$ari_pw"
    check_secret "the ARI user name" "$ari_user"
    # Keep RTP on the SIP address (loopback by default); on 0.0.0.0 RTP listens everywhere.
    if [ "$sip_bind" = 0.0.0.0 ] || [ "$sip_bind" = "::" ]; then
        media=";media_address: any (the SIP transport listens on $sip_bind)"
    else
        media=$'media_address='"$sip_bind"$'\nbind_rtp_to_media_address=yes'
    fi
    mkdir -p "$dest"
    for f in "$CONF_SRC"/*.conf; do
        content=$(<"$f")
        content=${content//@ARI_USER@/$ari_user}
        content=${content//@ARI_PASSWORD@/$ari_pw}
        content=${content//@SIP_BIND@/$sip_bind}
        content=${content//@HTTP_BIND@/$ari_bind}
        content=${content//@MEDIA_ADDRESS@/$media}
        for t in "${TESTERS[@]}"; do
            name=@${t^^}_PASSWORD@
            if [[ $content == *"$name"* ]]; then
                content=${content//$name/$(tester_password "$t")}
            fi
        done
        (umask 077; printf '%s\n' "$content" > "$dest/$(basename "$f")")
    done
}

install_conf_system() {
    if [ ! -d /etc/asterisk.orig-ivr ] && [ -d /etc/asterisk ]; then
        cp -a /etc/asterisk /etc/asterisk.orig-ivr
        say "saved the original /etc/asterisk to /etc/asterisk.orig-ivr"
    fi
    render_conf /etc/asterisk
    if id asterisk >/dev/null 2>&1; then
        chown asterisk: /etc/asterisk/*.conf 2>/dev/null || true
    fi
}

# Rendered prompts: prompts/audio/<lang>/<id>.wav is sound:ivr/<lang>/<id>.
attach_prompts() {
    local target
    if [ "$(mode)" = chroot ]; then
        target="$ROOT/usr/share/asterisk/sounds/ivr"
        if [ -d "$PROMPTS_AUDIO" ]; then
            mkdir -p "$target"
            is_mounted "$target" || mount --bind -o ro "$PROMPTS_AUDIO" "$target" 2>/dev/null \
                || { mount --bind "$PROMPTS_AUDIO" "$target" && mount -o remount,bind,ro "$target"; }
        fi
    else
        target=/usr/share/asterisk/sounds/ivr
        if [ -d "$PROMPTS_AUDIO" ]; then
            mkdir -p "$target"
            cp -a "$PROMPTS_AUDIO"/. "$target"/
        fi
    fi
}

ast_cmd() {  # the asterisk command line, as an array, for 'timeout'
    if [ "$(mode)" = chroot ]; then
        printf '%s\n' chroot "$ROOT" asterisk
    else
        printf '%s\n' asterisk
    fi
}

wait_booted() {
    local deadline=$((SECONDS + BOOT_TIMEOUT)) cmd
    mapfile -t cmd < <(ast_cmd)
    until timeout 10 "${cmd[@]}" -rx "core waitfullybooted" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            echo "sandbox: Asterisk did not finish booting within ${BOOT_TIMEOUT}s; last log lines:" >&2
            show_logs 30 >&2 || true
            exit 1
        fi
        if [ "$(mode)" = chroot ] && [ -z "$(asterisk_pids)" ] && ((SECONDS > deadline - BOOT_TIMEOUT + 2)); then
            echo "sandbox: Asterisk exited while starting; last log lines:" >&2
            show_logs 30 >&2 || true
            unmount_all
            exit 1
        fi
        sleep 0.3
    done
}

# Music on hold: Debian's default class plays <sounds data>/moh, which the minimal chroot lacks.
# A soft two-tone chime is rendered there once (sox) so the engine can use MOH while callers wait.
ensure_moh() {
    local dir="$ROOT/usr/share/asterisk/moh"
    mkdir -p "$dir"
    if [ -z "$(ls -A "$dir")" ] && command -v sox >/dev/null 2>&1; then
        sox -n -r 8000 -c 1 -b 16 "$dir/ivr-hold.wav" \
            synth 0.6 sine 523 synth 0.6 sine 659 : synth 1.8 sine 0 vol 0.25 2>/dev/null \
            || sox -n -r 8000 -c 1 -b 16 "$dir/ivr-hold.wav" synth 3 sine 440 vol 0.1
    fi
}

start_chroot() {
    mount_chroot
    ensure_moh
    write_hosts
    render_conf "$ROOT/etc/asterisk"
    attach_prompts
    mkdir -p "$ROOT/var/log/asterisk"
    : > "$ROOT$FG_LOG"
    chroot "$ROOT" sh -c "setsid asterisk -f -n -g > $FG_LOG 2>&1 < /dev/null &"
    wait_booted
}

start_system() {
    install_conf_system
    attach_prompts
    if command -v systemctl >/dev/null 2>&1 && systemctl cat asterisk.service >/dev/null 2>&1 \
            && [ -d /run/systemd/system ]; then
        systemctl start asterisk
    else
        mkdir -p /var/run/asterisk
        if id asterisk >/dev/null 2>&1; then
            chown asterisk: /var/run/asterisk
            asterisk -U asterisk -G asterisk
        else
            asterisk
        fi
    fi
    wait_booted
}

reload_config() {
    if [ "$(mode)" = chroot ]; then
        write_hosts
        render_conf "$ROOT/etc/asterisk"
    else
        install_conf_system
    fi
    attach_prompts
    ast_rx "core reload" >/dev/null
    # ARI users and the HTTP server are re-read by 'core reload'; modules.conf changes need a restart.
}

# ---------------------------------------------------------------------------------------------
# Commands.

cmd_up() {
    need_root
    [ -d "$CONF_SRC" ] || die "no configuration folder at $CONF_SRC"
    if [ "$(mode)" = chroot ]; then
        build_chroot
    fi
    if is_running; then
        reload_config
        say "already running; configuration reloaded"
    else
        if [ "$(mode)" = chroot ]; then start_chroot; else start_system; fi
        say "Asterisk is up ($(ast_rx 'core show version' | head -n1 | awk '{print $1, $2}'))"
    fi
    say "ARI: http://${IVR_SANDBOX_ARI_BIND:-127.0.0.1}:8088/ari/ user ${IVR_ARI_USER:-ivr}," \
        "password ${IVR_ARI_PASSWORD:+from \$IVR_ARI_PASSWORD}${IVR_ARI_PASSWORD:-in $STATE/ari-password}"
    say "SIP: udp ${IVR_SANDBOX_BIND:-127.0.0.1}:5060 (softphones: tester1..3, passwords in $STATE/tester-passwords)"
}

asterisk_pids() {
    # Processes whose root is our chroot and whose command is asterisk.
    local p
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/root" 2>/dev/null)" = "$ROOT" ] || continue
        [ "$(cat "$p/comm" 2>/dev/null)" = asterisk ] || continue
        echo "${p#/proc/}"
    done
}

cmd_down() {
    need_root
    if [ "$(mode)" = system ]; then
        if is_running; then
            if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ] \
                    && systemctl is-active -q asterisk 2>/dev/null; then
                systemctl stop asterisk
            else
                ast_rx "core stop now" >/dev/null 2>&1 || true
            fi
        fi
        say "stopped"
        return 0
    fi
    if [ -f "$MARKER" ] && is_running; then
        ast_rx "core stop now" >/dev/null 2>&1 || true
    fi
    local i pids
    for i in $(seq 1 50); do
        pids=$(asterisk_pids)
        [ -z "$pids" ] && break
        if [ "$i" -eq 30 ]; then
            # shellcheck disable=SC2086
            kill -TERM $pids 2>/dev/null || true
        elif [ "$i" -eq 45 ]; then
            # shellcheck disable=SC2086
            kill -KILL $pids 2>/dev/null || true
        fi
        sleep 0.2
    done
    pids=$(asterisk_pids)
    [ -z "$pids" ] || die "Asterisk (pid $pids) did not stop"
    unmount_all
    [ -z "$(chroot_mounts)" ] || die "still mounted: $(chroot_mounts | tr '\n' ' ')"
    say "stopped"
}

cmd_status() {
    if is_running; then
        echo "running ($(mode): $(ast_rx 'core show uptime' 2>/dev/null | head -n1))"
        return 0
    fi
    echo "stopped"
    return 3
}

show_logs() {
    local n=${1:-50} prefix=""
    [ "$(mode)" = chroot ] && prefix=$ROOT
    local f shown=0
    for f in "$prefix/var/log/asterisk/messages.log" "$prefix$FG_LOG"; do
        if [ -s "$f" ]; then
            echo "==> $f <=="
            tail -n "$n" "$f"
            shown=1
        fi
    done
    [ "$shown" = 1 ] || echo "no Asterisk log yet"
}

cmd_rx() {
    [ "$#" -ge 1 ] || die "usage: sandbox.sh rx 'CLI COMMAND'"
    is_running || { echo "sandbox: Asterisk is not running (scripts/sandbox.sh up)" >&2; return 3; }
    ast_rx "$*"
}

main() {
    local action=${1:-}
    shift || true
    case "$action" in
        up) cmd_up ;;
        build) need_root; [ "$(mode)" != chroot ] || build_chroot ;;
        down) cmd_down ;;
        status) cmd_status ;;
        logs) show_logs "${1:-50}" ;;
        rx) cmd_rx "$@" ;;
        *) echo "usage: $0 up|down|status|logs [N]|rx CMD" >&2; exit 2 ;;
    esac
}

main "$@"
