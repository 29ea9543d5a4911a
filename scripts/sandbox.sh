#!/usr/bin/env bash
# The sandbox Asterisk: a real Asterisk 22 configured from asterisk-conf/ for the engine and the
# end-to-end tests.
#
#   scripts/sandbox.sh up        build (once) and start it, or reload its configuration if running
#   scripts/sandbox.sh up --rtp-ports N
#                                the same with N RTP ports for the main instance instead of 1,000
#                                (10000-10999): each call's media takes two (RTP and RTCP), so N/2
#                                calls at once; above 1,000 the range is 20000..20000+N-1 (kept clear
#                                of the centers' 12000-18999).  bench/asterisk_load.py uses it.
#   scripts/sandbox.sh up --centers N
#                                the same, and N (2..7) "center" Asterisks beside it (seoul, busan,
#                                daegu, gwangju, daejeon, gyeongin, hq) with trunks between them, and
#                                Kamailio in front of them on 127.0.0.1:5300 (docs/sandbox.md)
#   scripts/sandbox.sh down [--centers]
#                                stop everything 'up' started and unmount what it mounted (idempotent);
#                                with --centers only the centers and Kamailio
#   scripts/sandbox.sh status [--centers]
#                                print running/stopped; exit 0 when running, 3 when stopped (the main
#                                instance; with --centers: the centers and Kamailio)
#   scripts/sandbox.sh logs [--center NAME | --kamailio] [N]
#                                last N lines (default 50) of the Asterisk (or Kamailio) logs
#   scripts/sandbox.sh rx [--center NAME] CMD
#                                run an Asterisk CLI command, e.g. rx "pjsip show endpoints"
#   scripts/sandbox.sh center start|stop|kill NAME
#                                start, stop or kill (SIGKILL) one center's Asterisk; the rest runs on
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
#   IVR_SANDBOX_ARI_BIND     address ARI/HTTP listens on (default 127.0.0.1); also HTTPS, which
#                            carries browsers' SIP over WebSocket (wss://ADDRESS:8443/ws)
#   IVR_SANDBOX_TLS_CERT     the HTTPS certificate (PEM) to use instead of the one the sandbox
#   IVR_SANDBOX_TLS_KEY      makes into .sandbox/tls/ (self-signed); give both or neither
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
INTERPRETERS=(interp1 interp2 interp3)
TLS_DIR="$STATE/tls"
MAIN_HTTPS_PORT=8443     # HTTPS, and browsers' SIP over WebSocket (wss://…:8443/ws)
TLS_MIN_DAYS=30          # a certificate the sandbox made is made again this long before it expires

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

# A file of "NAME PASSWORD" lines, one per account: NAME's password, added when missing.
# .sandbox/tester-passwords (softphones, testerN), .sandbox/interpreter-passwords (interpN).
account_password() {  # file name
    local f=$1 t=$2 pw
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

tester_password() { account_password "$STATE/tester-passwords" "$1"; }
interpreter_password() { account_password "$STATE/interpreter-passwords" "$1"; }

# The one account every caller's browser page calls with (endpoint video-guest).
video_guest_password() {
    local f="$STATE/video-guest-password"
    if [ ! -s "$f" ]; then
        mkdir -p "$STATE"
        (umask 077; random_secret > "$f")
    fi
    chmod 600 "$f"
    tr -d '\r\n' < "$f"
}

# ---------------------------------------------------------------------------------------------
# TLS for HTTPS (and so for browsers' SIP over WebSocket): a deployment's certificate and key
# (IVR_SANDBOX_TLS_CERT, IVR_SANDBOX_TLS_KEY), or a self-signed one made here once, into
# .sandbox/tls/ (asterisk.names records the names it was made for), and made again when it
# expires within TLS_MIN_DAYS days or does not name an address the sandbox listens on.  Installed as Asterisk's keys/asterisk.crt and asterisk.key
# (http.conf), which every center reads too.

# The names the certificate must hold, as a subjectAltName value: loopback, and the bind
# addresses when they name one address (IPv4, IPv6 or a host name).
tls_names() {
    local names="IP:127.0.0.1,DNS:localhost" a
    for a in "${IVR_SANDBOX_BIND:-}" "${IVR_SANDBOX_ARI_BIND:-}"; do
        case "$a" in
            ""|127.0.0.1|0.0.0.0|"::"|localhost) continue ;;
        esac
        if [[ $a =~ ^[0-9]+(\.[0-9]+){3}$ || $a == *:* ]]; then
            names+=",IP:$a"
        else
            names+=",DNS:$a"
        fi
    done
    printf '%s' "$names" | tr ',' '\n' | awk '!seen[$0]++' | paste -sd, -
}

# Whether every name of $2 is among those the certificate was made for (recorded in $1).
tls_names_ok() {  # names-file names
    local n
    [ -f "$1" ] || return 1
    for n in $(tr ',' ' ' <<< "$2"); do
        tr ',' '\n' < "$1" | grep -qxF -- "$n" || return 1
    done
}

make_tls_cert() {  # cert key names
    local tmp
    command -v openssl >/dev/null 2>&1 || die "openssl is needed to make the sandbox's TLS certificate"
    mkdir -p "$(dirname "$1")"
    chmod 700 "$(dirname "$1")"
    tmp=$(mktemp -d "$(dirname "$1")/new.XXXXXX")
    if ! (umask 077; openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 825 \
            -subj "/CN=ivr sandbox Asterisk" -addext "subjectAltName=$3" \
            -addext "basicConstraints=critical,CA:FALSE" -addext "keyUsage=digitalSignature,keyEncipherment" \
            -addext "extendedKeyUsage=serverAuth" \
            -keyout "$tmp/key.pem" -out "$tmp/cert.pem" > "$tmp/openssl.log" 2>&1); then
        cat "$tmp/openssl.log" >&2
        rm -rf "$tmp"
        die "openssl could not make the TLS certificate"
    fi
    chmod 600 "$tmp/key.pem"
    chmod 644 "$tmp/cert.pem"
    mv "$tmp/key.pem" "$2"
    mv "$tmp/cert.pem" "$1"
    printf '%s\n' "$3" > "${1%.crt}.names"
    rm -rf "$tmp"
    say "made a self-signed TLS certificate for $3 into $1 (valid 825 days)" >&2
}

# Prints the certificate's and the key's paths, one a line.
tls_files() {
    local cert key names
    if [ -n "${IVR_SANDBOX_TLS_CERT:-}${IVR_SANDBOX_TLS_KEY:-}" ]; then
        cert=${IVR_SANDBOX_TLS_CERT:-} key=${IVR_SANDBOX_TLS_KEY:-}
        [ -n "$cert" ] && [ -n "$key" ] || die "IVR_SANDBOX_TLS_CERT and IVR_SANDBOX_TLS_KEY go together: set both"
        [ -r "$cert" ] || die "IVR_SANDBOX_TLS_CERT: cannot read $cert"
        [ -r "$key" ] || die "IVR_SANDBOX_TLS_KEY: cannot read $key"
        openssl x509 -in "$cert" -noout 2>/dev/null || die "IVR_SANDBOX_TLS_CERT: $cert is not a PEM certificate"
        openssl x509 -in "$cert" -noout -checkend 0 >/dev/null 2>&1 \
            || say "warning: the certificate $cert has expired" >&2
    else
        cert="$TLS_DIR/asterisk.crt" key="$TLS_DIR/asterisk.key"
        names=$(tls_names)
        if [ ! -s "$cert" ] || [ ! -s "$key" ] \
                || ! openssl x509 -in "$cert" -noout -checkend $((TLS_MIN_DAYS * 86400)) >/dev/null 2>&1 \
                || ! tls_names_ok "$TLS_DIR/asterisk.names" "$names"; then
            make_tls_cert "$cert" "$key" "$names"
        fi
        chmod 600 "$key"
    fi
    printf '%s\n%s\n' "$cert" "$key"
}

# Asterisk's keys folder: keys/asterisk.crt and keys/asterisk.key for http.conf.
install_tls() {
    local cert key dir
    { read -r cert; read -r key; } < <(tls_files)
    [ -n "$key" ] || exit 1
    dir="$(ast_prefix)/etc/asterisk/keys"
    mkdir -p "$dir"
    cmp -s "$cert" "$dir/asterisk.crt" || install -m 644 "$cert" "$dir/asterisk.crt"
    cmp -s "$key" "$dir/asterisk.key" || install -m 600 "$key" "$dir/asterisk.key"
    if [ "$(mode)" = system ] && id asterisk >/dev/null 2>&1; then
        chown asterisk: "$dir/asterisk.crt" "$dir/asterisk.key"
    fi
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

# Run a command with none of our file descriptors but 0, 1 and 2.  What it leaves running
# (Asterisk, Kamailio) must not inherit a lock held around 'up' (flock /tmp/ivr-sandbox.lock
# scripts/sandbox.sh up): the lock would stay held for as long as they run.
without_our_fds() {
    (
        close_our_fds
        exec "$@"
    )
}

# The same for a command that runs on (in the background): the process that closes our
# descriptors becomes the command itself, so no shell of ours waits for it holding them.
spawn() {
    (
        close_our_fds
        exec "$@"
    ) &
}

close_our_fds() {
    local fd
    for fd in /proc/"$BASHPID"/fd/*; do
        fd=${fd##*/}
        if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
}

# Wait up to 10 s until the processes that "$@" prints are gone: SIGTERM after 6 s, SIGKILL
# after 9 s.  Fails when some are left.
until_gone() {
    local i pids
    for i in $(seq 1 50); do
        pids=$("$@")
        [ -z "$pids" ] && return 0
        if [ "$i" -eq 30 ]; then
            # shellcheck disable=SC2086
            kill -TERM $pids 2>/dev/null || true
        elif [ "$i" -eq 45 ]; then
            # shellcheck disable=SC2086
            kill -KILL $pids 2>/dev/null || true
        fi
        sleep 0.2
    done
    [ -z "$("$@")" ]
}

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
# Configuration: asterisk-conf/* rendered with secrets, bind addresses and, for each instance,
# its ports, agents and trunks.  The main instance and every center render from the same files.

# The line that is exactly PLACEHOLDER becomes VALUE (several lines); with no value it is dropped.
put_block() {  # text placeholder value
    local line out=""
    while IFS= read -r line || [ -n "$line" ]; do
        if [ "$line" = "$2" ]; then
            [ -z "$3" ] || out+=$3$'\n'
        else
            out+=$line$'\n'
        fi
    done <<< "$1"
    printf '%s' "${out%$'\n'}"
}

block() {  # name: asterisk-conf/blocks/NAME.in
    local f="$CONF_SRC/blocks/$1.in"
    [ -f "$f" ] || die "missing $f"
    printf '%s' "$(<"$f")"
}

# The address other processes on this machine reach the SIP transport at.
sip_address() {
    local bind=${IVR_SANDBOX_BIND:-127.0.0.1}
    case "$bind" in 0.0.0.0|"::") echo 127.0.0.1 ;; *) echo "$bind" ;; esac
}

agent_block() {  # endpoint label port
    local b
    b=$(block pjsip-agent)
    b=${b//@AGENT_LABEL@/$2}
    b=${b//@AGENT_PORT@/$3}
    printf '%s' "${b//@AGENT@/$1}"
}

agents_section() {  # [center]: the agents' endpoints, separated by blank lines
    local out="" i name label port
    if [ -z "${1:-}" ]; then
        for i in 1 2 3 4; do
            out+=$(agent_block "agent$i" "Agent $i" $((5070 + i)))$'\n\n'
        done
    else
        for i in 1 2; do
            name=$1$i
            label="${1^} $i"
            port=$(($(center_sip_port "$1") + i))
            out+=$(agent_block "$name" "$label" "$port")$'\n\n'
        done
    fi
    printf '%s' "${out%$'\n\n'}"
}

trunks_section() {  # center: endpoints to and from every other running center
    local center=$1 peers="" peer b addr
    for peer in $(wanted_centers); do
        [ "$peer" = "$center" ] && continue
        addr="$(sip_address):$(center_sip_port "$peer")"
        b=$(block pjsip-peer)
        b=${b//@PEER_ADDR@/$addr}
        peers+=${b//@PEER@/$peer}$'\n\n'
    done
    b=$(block pjsip-trunks)
    put_block "$b" @PEERS@ "${peers%$'\n\n'}"
}

trunk_dialplan() {  # center
    local b exts="" i
    for i in 1 2; do
        exts+="exten => $1$i,1,Dial(PJSIP/\${EXTEN})"$'\n'" same => n,Hangup()"$'\n'
    done
    b=$(block extensions-trunk)
    b=${b//@CENTER_AGENTS@/${1}1 and ${1}2}
    put_block "$b" @TRUNK_EXTENSIONS@ "${exts%$'\n'}"
}

# Test callers are everyone on this machine but the other centers' SIP transports (their calls
# are trunk calls): an identify match with a source port wins over one without only if the
# address-only match excludes that port (see pjsip-trunks.in).
caller_match() {  # [center]
    local out="127.0.0.1" peer
    [ -n "${1:-}" ] || { echo "$out"; return; }
    for peer in $(wanted_centers); do
        [ "$peer" = "$1" ] && continue
        out+=", !$(sip_address):$(center_sip_port "$peer")/32"
    done
    echo "$out"
}

render_conf() {  # destination directory [center]
    local dest=$1 center=${2:-} sip_bind ari_bind ari_user ari_pw media f content t name
    local sip_port http_port https_port rtp_start rtp_end directories agents trunks dialplan callers
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
    if [ -n "$center" ]; then
        sip_port=$(center_sip_port "$center")
        http_port=$(center_http_port "$center")
        https_port=$(center_https_port "$center")
        rtp_start=$(center_rtp_start "$center")
        rtp_end=$((rtp_start + 999))
        directories=$(block asterisk-directories)
        directories=${directories//@CENTER@/$center}
        trunks=$(trunks_section "$center")
        dialplan=$(trunk_dialplan "$center")
    else
        sip_port=5060 http_port=8088 https_port=$MAIN_HTTPS_PORT directories="" trunks="" dialplan=""
        read -r rtp_start rtp_end < <(main_rtp_range)
    fi
    agents=$(agents_section "$center")
    callers=$(caller_match "$center")
    install_tls
    mkdir -p "$dest"
    for f in "$CONF_SRC"/*.conf; do
        content=$(<"$f")
        content=$(put_block "$content" @DIRECTORIES@ "$directories")
        content=$(put_block "$content" @AGENTS@ "$agents")
        content=$(put_block "$content" @TRUNKS@ "$trunks")
        content=$(put_block "$content" @TRUNK_DIALPLAN@ "$dialplan")
        content=${content//@ARI_USER@/$ari_user}
        content=${content//@ARI_PASSWORD@/$ari_pw}
        content=${content//@SIP_BIND@/$sip_bind}
        content=${content//@SIP_PORT@/$sip_port}
        content=${content//@CALLER_MATCH@/$callers}
        content=${content//@HTTP_BIND@/$ari_bind}
        content=${content//@HTTP_PORT@/$http_port}
        content=${content//@HTTPS_PORT@/$https_port}
        content=${content//@RTP_START@/$rtp_start}
        content=${content//@RTP_END@/$rtp_end}
        content=${content//@MEDIA_ADDRESS@/$media}
        for t in "${TESTERS[@]}"; do
            name=@${t^^}_PASSWORD@
            if [[ $content == *"$name"* ]]; then
                content=${content//$name/$(tester_password "$t")}
            fi
        done
        for t in "${INTERPRETERS[@]}"; do
            name=@${t^^}_PASSWORD@
            if [[ $content == *"$name"* ]]; then
                content=${content//$name/$(interpreter_password "$t")}
            fi
        done
        if [[ $content == *@VIDEO_GUEST_PASSWORD@* ]]; then
            content=${content//@VIDEO_GUEST_PASSWORD@/$(video_guest_password)}
        fi
        if [[ $content =~ @[A-Z0-9_]+@ ]]; then
            die "$(basename "$f"): placeholder ${BASH_REMATCH[0]} was not filled in"
        fi
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
        if [ "$(mode)" = chroot ] && [ -z "$(main_pids)" ] && ((SECONDS > deadline - BOOT_TIMEOUT + 2)); then
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
    without_our_fds chroot "$ROOT" sh -c "setsid asterisk -f -n -g > $FG_LOG 2>&1 < /dev/null &"
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
            without_our_fds asterisk -U asterisk -G asterisk
        else
            without_our_fds asterisk
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
# Centers: 'up --centers N' runs N more Asterisks next to the main one, from the same binary (the
# chroot's, or the system's) and the same asterisk-conf/ templates, each with its own
# asterisk.conf [directories], ports, agents and trunks to the others; and Kamailio in front of
# them as the callers' single SIP entry.

CENTER_NAMES=(seoul busan daegu gwangju daejeon gyeongin hq)
CENTERS_MIN=2
CENTERS_MAX=${#CENTER_NAMES[@]}
CENTERS_FILE="$STATE/centers"          # the centers 'up --centers' started, one name a line
CENTERS_JSON="$STATE/centers.json"     # the same with addresses, for the tests and tools
KAM_SRC="$REPO/kamailio-conf"
KAM_STATE="$STATE/kamailio"
KAM_PORT=5300

center_k() {  # name -> 1-based index
    local i
    for i in "${!CENTER_NAMES[@]}"; do
        if [ "${CENTER_NAMES[$i]}" = "$1" ]; then
            echo $((i + 1))
            return
        fi
    done
    die "no center named '$1' (centers: ${CENTER_NAMES[*]})"
}
center_sip_port() { local k; k=$(center_k "$1"); echo $((5200 + 10 * (k - 1))); }
center_http_port() { local k; k=$(center_k "$1"); echo $((8100 + 10 * (k - 1))); }
center_https_port() { local k; k=$(center_k "$1"); echo $((8101 + 10 * (k - 1))); }
center_rtp_start() { local k; k=$(center_k "$1"); echo $((12000 + 1000 * (k - 1))); }
center_conf() { echo "/etc/asterisk-$1/asterisk.conf"; }   # as Asterisk sees it
center_fg_log() { echo "/var/log/asterisk-$1/asterisk-fg.log"; }

wanted_centers() {
    [ -f "$CENTERS_FILE" ] && cat "$CENTERS_FILE"
    return 0
}

# Where Asterisk's files are seen from here: the chroot, or the host's root.
ast_prefix() { if [ "$(mode)" = chroot ]; then echo "$ROOT"; fi; }
ast_root() { if [ "$(mode)" = chroot ]; then echo "$ROOT"; else echo /; fi; }

center_rx() {  # center command
    in_ast asterisk -C "$(center_conf "$1")" -rx "$2"
}

center_running() {
    if [ "$(mode)" = chroot ] && [ ! -f "$MARKER" ]; then
        return 1
    fi
    [ -n "$(center_pids "$1")" ] && center_rx "$1" "core show version" >/dev/null 2>&1
}

# Asterisk servers (not 'asterisk -r' consoles) of one center: their command line names the
# center's asterisk.conf.
center_pids() {  # center
    local p root args want
    root=$(ast_root)
    want=" -C $(center_conf "$1") "
    for p in /proc/[0-9]*; do
        [ "$(cat "$p/comm" 2>/dev/null)" = asterisk ] || continue
        [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] || continue
        args=" $(tr '\0' ' ' < "$p/cmdline" 2>/dev/null) "
        [[ $args == *"$want"* ]] || continue
        [[ $args == *" -r"* || $args == *" -R"* ]] && continue
        echo "${p#/proc/}"
    done
}

# Every center that has an Asterisk running, whether or not .sandbox/centers lists it.
running_centers() {
    local c
    for c in "${CENTER_NAMES[@]}"; do
        [ -z "$(center_pids "$c")" ] || echo "$c"
    done
}

center_dirs() {  # center: the folders of its [directories], seen from here
    local prefix
    prefix=$(ast_prefix)
    printf '%s\n' "$prefix/etc/asterisk-$1" "$prefix/run/asterisk-$1" "$prefix/var/spool/asterisk-$1" \
        "$prefix/var/lib/asterisk-$1" "$prefix/var/cache/asterisk-$1" "$prefix/var/log/asterisk-$1"
}

start_center() {  # center (does not wait for it to boot)
    local c=$1 prefix fg user="" dirs=()
    prefix=$(ast_prefix)
    mapfile -t dirs < <(center_dirs "$c")
    mkdir -p "${dirs[@]}"
    render_conf "$prefix/etc/asterisk-$c" "$c"
    if [ "$(mode)" = system ] && id asterisk >/dev/null 2>&1; then
        chown -R asterisk: "${dirs[@]}"
        user="-U asterisk -G asterisk"
    fi
    fg=$(center_fg_log "$c")
    : > "$prefix$fg"
    local where=()
    [ "$(mode)" != chroot ] || where=(chroot "$ROOT")
    without_our_fds "${where[@]}" sh -c "setsid asterisk -C $(center_conf "$c") $user -f -n -g > $fg 2>&1 < /dev/null &"
}

wait_center_booted() {  # center
    local c=$1 deadline=$((SECONDS + BOOT_TIMEOUT)) started=$SECONDS cmd
    mapfile -t cmd < <(ast_cmd)
    until timeout 10 "${cmd[@]}" -C "$(center_conf "$c")" -rx "core waitfullybooted" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            echo "sandbox: $c's Asterisk did not finish booting within ${BOOT_TIMEOUT}s; last log lines:" >&2
            show_center_logs "$c" 30 >&2 || true
            exit 1
        fi
        if [ -z "$(center_pids "$c")" ] && ((SECONDS > started + 2)); then
            echo "sandbox: $c's Asterisk exited while starting; last log lines:" >&2
            show_center_logs "$c" 30 >&2 || true
            exit 1
        fi
        sleep 0.3
    done
}

reload_center() {  # center
    render_conf "$(ast_prefix)/etc/asterisk-$1" "$1"
    center_rx "$1" "core reload" >/dev/null
}

stop_center() {  # center
    local c=$1 i pids cmd
    [ -z "$(center_pids "$c")" ] && return 0
    mapfile -t cmd < <(ast_cmd)
    timeout 10 "${cmd[@]}" -C "$(center_conf "$c")" -rx "core stop now" >/dev/null 2>&1 || true
    until_gone center_pids "$c" || die "$c's Asterisk (pid $(center_pids "$c")) did not stop"
}

show_center_logs() {  # center [N]
    local c=$1 n=${2:-50} prefix f shown=0
    prefix=$(ast_prefix)
    for f in "$prefix/var/log/asterisk-$c/messages.log" "$prefix$(center_fg_log "$c")"; do
        if [ -s "$f" ]; then
            echo "==> $f <=="
            tail -n "$n" "$f"
            shown=1
        fi
    done
    [ "$shown" = 1 ] || echo "no log of $c's Asterisk yet"
}

write_centers_json() {
    local c first=1 sip http rtp addr ari_host
    addr=$(sip_address)
    ari_host=${IVR_SANDBOX_ARI_BIND:-127.0.0.1}
    case "$ari_host" in 0.0.0.0|"::") ari_host=127.0.0.1 ;; esac
    {
        printf '{\n  "kamailio": {"sip": "%s:%s", "ctl": "unix:%s/kamailio.ctl"},\n  "centers": [' \
            "$addr" "$KAM_PORT" "$KAM_STATE"
        for c in $(wanted_centers); do
            sip=$(center_sip_port "$c")
            http=$(center_http_port "$c")
            rtp=$(center_rtp_start "$c")
            [ "$first" = 1 ] || printf ','
            first=0
            printf '\n    {"name": "%s", "index": %s, "sip": "%s:%s", "ari": "http://%s:%s/ari",' \
                "$c" "$(center_k "$c")" "$addr" "$sip" "$ari_host" "$http"
            printf ' "wss": "wss://%s:%s/ws",' "$ari_host" "$(center_https_port "$c")"
            printf ' "rtp": [%s, %s], "dispatcher_set": %s, "config": "%s",' \
                "$rtp" $((rtp + 999)) $(($(center_k "$c") + 1)) "$(center_conf "$c")"
            printf '\n     "agents": {"%s1": "127.0.0.1:%s", "%s2": "127.0.0.1:%s"}}' \
                "$c" $((sip + 1)) "$c" $((sip + 2))
        done
        printf '\n  ]\n}\n'
    } > "$CENTERS_JSON.tmp"
    mv "$CENTERS_JSON.tmp" "$CENTERS_JSON"
}

# ---------------------------------------------------------------------------------------------
# Kamailio (Debian package 'kamailio'), run from .sandbox/kamailio/ with the configuration
# rendered from kamailio-conf/.  The packaged service never runs: it would start with its default
# configuration and take port 5060 from the sandbox Asterisk.

kamailio_service_off() {
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        systemctl disable --now kamailio.service >/dev/null 2>&1 || true
    else
        if [ -x /etc/init.d/kamailio ]; then
            /etc/init.d/kamailio stop >/dev/null 2>&1 || true
        fi
        command -v update-rc.d >/dev/null 2>&1 && update-rc.d kamailio disable >/dev/null 2>&1 || true
    fi
}

ensure_kamailio() {
    if ! dpkg-query -W -f='${Status}' kamailio 2>/dev/null | grep -q "install ok installed"; then
        # Keep the package's maintainer scripts from starting the service (invoke-rc.d asks
        # policy-rc.d; exit 101 means "not allowed").
        local guard=""
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            guard=/usr/sbin/policy-rc.d
            printf '#!/bin/sh\n# ivr sandbox: no service starts while kamailio is installed\nexit 101\n' > "$guard"
            chmod 755 "$guard"
        fi
        install_if_missing kamailio || { [ -z "$guard" ] || rm -f "$guard"; exit 1; }
        [ -z "$guard" ] || rm -f "$guard"
    fi
    kamailio_service_off
    local p others=""
    for p in /proc/[0-9]*; do
        [ "$(cat "$p/comm" 2>/dev/null)" = kamailio ] || continue
        tr '\0' ' ' < "$p/cmdline" 2>/dev/null | grep -qF -- "$KAM_STATE/kamailio.cfg" || others+=" ${p#/proc/}"
    done
    [ -z "$others" ] || say "warning: a Kamailio the sandbox did not start is running (pid$others);" \
        "if it holds port 5060 or $KAM_PORT, stop it (systemctl stop kamailio)" >&2
    command -v kamailio >/dev/null 2>&1 || die "the kamailio package is installed but there is no kamailio command"
    command -v kamcmd >/dev/null 2>&1 || die "the kamailio package is installed but there is no kamcmd command"
}

kam_ctl() { echo "unix:$KAM_STATE/kamailio.ctl"; }
kamcmd_() { kamcmd -s "$(kam_ctl)" "$@"; }

# The main Kamailio process we started (the pid file names it, and it runs our configuration).
kamailio_pid() {
    local pid
    pid=$(cat "$KAM_STATE/kamailio.pid" 2>/dev/null) || return 0
    [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 0
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = kamailio ] || return 0
    tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$KAM_STATE/kamailio.cfg" || return 0
    echo "$pid"
}

# All processes of that Kamailio (it forks workers).
kamailio_pids() {
    local p cfg="$KAM_STATE/kamailio.cfg"
    for p in /proc/[0-9]*; do
        [ "$(cat "$p/comm" 2>/dev/null)" = kamailio ] || continue
        tr '\0' ' ' < "$p/cmdline" 2>/dev/null | grep -qF -- "$cfg" || continue
        echo "${p#/proc/}"
    done
}

render_kamailio() {  # directory
    local dest=$1 addr c list="" sets="" cases="" content k
    addr=$(sip_address)
    for c in $(wanted_centers); do
        k=$(center_k "$c")
        list+="1 sip:$addr:$(center_sip_port "$c") 0 0 duid=$c"$'\n'
        sets+="$((k + 1)) sip:$addr:$(center_sip_port "$c") 0 0 duid=$c"$'\n'
        cases+="        case \"$c\": \$var(set) = $((k + 1)); break;"$'\n'
    done
    [ -f "$KAM_SRC/kamailio.cfg" ] || die "missing $KAM_SRC/kamailio.cfg"
    [ -f "$KAM_SRC/dispatcher.list" ] || die "missing $KAM_SRC/dispatcher.list"
    mkdir -p "$dest"
    content=$(<"$KAM_SRC/dispatcher.list")
    content=$(put_block "$content" @SET_ALL@ "${list%$'\n'}")
    content=$(put_block "$content" @SETS_ONE_CENTER@ "${sets%$'\n'}")
    printf '%s\n' "$content" > "$dest/dispatcher.list.new"
    content=$(<"$KAM_SRC/kamailio.cfg")
    content=$(put_block "$content" @CENTER_CASES@ "${cases%$'\n'}")
    content=${content//@LISTEN_ADDRESS@/$addr}
    content=${content//@LISTEN_PORT@/$KAM_PORT}
    content=${content//@STATE_DIR@/$dest}
    content=${content//@CTL_SOCKET@/$(kam_ctl)}
    content=${content//@DISPATCHER_LIST@/$dest/dispatcher.list}
    if [[ $content =~ @[A-Z0-9_]+@ ]]; then
        die "kamailio.cfg: placeholder ${BASH_REMATCH[0]} was not filled in"
    fi
    printf '%s\n' "$content" > "$dest/kamailio.cfg.new"
}

start_kamailio() {
    local deadline
    kamailio -c -f "$KAM_STATE/kamailio.cfg" -Y "$KAM_STATE" > "$KAM_STATE/check.log" 2>&1 \
        || { tail -n 20 "$KAM_STATE/check.log" >&2; die "kamailio rejects $KAM_STATE/kamailio.cfg"; }
    : > "$KAM_STATE/kamailio.log"
    rm -f "$KAM_STATE/kamailio.pid"
    # -DD: the main process stays in the foreground (here: its own session, in the background).
    spawn setsid kamailio -f "$KAM_STATE/kamailio.cfg" -P "$KAM_STATE/kamailio.pid" -Y "$KAM_STATE" -DD -E \
        >> "$KAM_STATE/kamailio.log" 2>&1 < /dev/null
    deadline=$((SECONDS + 15))
    until [ -n "$(kamailio_pid)" ] && kamcmd_ core.uptime >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            tail -n 30 "$KAM_STATE/kamailio.log" >&2
            die "Kamailio did not start (log: $KAM_STATE/kamailio.log)"
        fi
        sleep 0.2
    done
}

stop_kamailio() {
    local i pids pid
    pid=$(kamailio_pid)
    [ -z "$pid" ] || kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do
        pids=$(kamailio_pids)
        [ -z "$pids" ] && { rm -f "$KAM_STATE/kamailio.pid"; return 0; }
        if [ "$i" -eq 30 ]; then
            # shellcheck disable=SC2086
            kill -KILL $pids 2>/dev/null || true
        fi
        sleep 0.1
    done
    die "Kamailio (pid $(kamailio_pids | tr '\n' ' ')) did not stop"
}

# Render, then start Kamailio, or restart it if its configuration changed, or reload its
# dispatcher list if only that changed.
up_kamailio() {
    local cfg_changed=1 list_changed=1
    ensure_kamailio
    render_kamailio "$KAM_STATE"
    cmp -s "$KAM_STATE/kamailio.cfg.new" "$KAM_STATE/kamailio.cfg" 2>/dev/null && cfg_changed=0
    cmp -s "$KAM_STATE/dispatcher.list.new" "$KAM_STATE/dispatcher.list" 2>/dev/null && list_changed=0
    mv "$KAM_STATE/kamailio.cfg.new" "$KAM_STATE/kamailio.cfg"
    mv "$KAM_STATE/dispatcher.list.new" "$KAM_STATE/dispatcher.list"
    if [ -n "$(kamailio_pid)" ]; then
        if [ "$cfg_changed" = 1 ]; then
            stop_kamailio
            start_kamailio
            say "Kamailio restarted (its configuration changed)"
        elif [ "$list_changed" = 1 ]; then
            kamcmd_ dispatcher.reload >/dev/null
            say "Kamailio: dispatcher list reloaded"
        fi
    else
        [ -z "$(kamailio_pids)" ] || stop_kamailio
        start_kamailio
        say "Kamailio is up ($(kamailio -v 2>/dev/null | head -n1 | awk '{print $3}'))"
    fi
}

up_centers() {  # N
    local n=$1 c want=() old=() started=()
    [[ $n =~ ^[0-9]+$ ]] && ((n >= CENTERS_MIN && n <= CENTERS_MAX)) \
        || die "--centers takes a number from $CENTERS_MIN to $CENTERS_MAX, not '$n'"
    want=("${CENTER_NAMES[@]:0:n}")
    mapfile -t old < <(running_centers)
    # Centers beyond N go first, so that the others' trunks no longer point at them.
    for c in "${old[@]}"; do
        if [[ " ${want[*]} " != *" $c "* ]]; then
            stop_center "$c"
            say "center $c stopped"
        fi
    done
    mkdir -p "$STATE"
    printf '%s\n' "${want[@]}" > "$CENTERS_FILE"
    for c in "${want[@]}"; do
        if center_running "$c"; then
            reload_center "$c"
        else
            [ -z "$(center_pids "$c")" ] || stop_center "$c"
            start_center "$c"
            started+=("$c")
        fi
    done
    for c in "${started[@]}"; do
        wait_center_booted "$c"
    done
    write_centers_json
    up_kamailio
    for c in "${want[@]}"; do
        say "center $c: SIP udp $(sip_address):$(center_sip_port "$c")," \
            "ARI http://${IVR_SANDBOX_ARI_BIND:-127.0.0.1}:$(center_http_port "$c")/ari/," \
            "WSS :$(center_https_port "$c")/ws," \
            "agents ${c}1 ${c}2$([[ " ${started[*]} " == *" $c "* ]] && echo ", started" || echo ", reloaded")"
    done
    say "Kamailio: SIP udp $(sip_address):$KAM_PORT, kamcmd -s $(kam_ctl) dispatcher.list"
}

down_centers() {
    local c
    for c in $( { wanted_centers; running_centers; } | sort -u); do
        stop_center "$c"
    done
    [ -z "$(kamailio_pids)" ] || stop_kamailio
    rm -f "$CENTERS_FILE" "$CENTERS_JSON"
}

# One line per center and for Kamailio; exit 0 when every center 'up --centers' started and
# Kamailio are running, 3 otherwise.
status_centers() {
    local c rc=0 pid
    for c in $(wanted_centers); do
        if center_running "$c"; then
            echo "center $c: running (SIP $(sip_address):$(center_sip_port "$c"), ARI port $(center_http_port "$c"), HTTPS port $(center_https_port "$c"))"
        else
            echo "center $c: stopped"
            rc=3
        fi
    done
    for c in $(running_centers); do
        [[ " $(wanted_centers | tr '\n' ' ') " == *" $c "* ]] || echo "center $c: running (not in $CENTERS_FILE)"
    done
    pid=$(kamailio_pid)
    if [ -n "$pid" ]; then
        echo "kamailio: running (pid $pid, SIP $(sip_address):$KAM_PORT)"
    elif [ -n "$(wanted_centers)" ]; then
        echo "kamailio: stopped"
        rc=3
    fi
    [ -n "$(wanted_centers)" ] || { echo "centers: none"; rc=3; }
    return "$rc"
}

# ---------------------------------------------------------------------------------------------
# Commands.

# The main instance's RTP range: 10000-10999, or what 'up --rtp-ports N' asked for (kept in
# $RTP_PORTS_FILE until the next 'up').  Two ports a call: RTP on the even port, RTCP on the next.
RTP_PORTS_FILE="$STATE/rtp-ports"
RTP_PORTS_MAX=40000
main_rtp_range() {
    local n
    n=$(cat "$RTP_PORTS_FILE" 2>/dev/null) || n=1000
    if [ "$n" -le 1000 ]; then echo 10000 $((10000 + n - 1)); else echo 20000 $((20000 + n - 1)); fi
}

cmd_up() {
    local centers="" rtp_ports=1000
    while (($#)); do
        case "$1" in
            --rtp-ports) [ "$#" -ge 2 ] || die "--rtp-ports needs a number (2..$RTP_PORTS_MAX, even)"; rtp_ports=$2; shift 2 ;;
            --rtp-ports=*) rtp_ports=${1#--rtp-ports=}; shift ;;
            --centers) [ "$#" -ge 2 ] || die "--centers needs a number ($CENTERS_MIN..$CENTERS_MAX)"; centers=$2; shift 2 ;;
            --centers=*) centers=${1#--centers=}; shift ;;
            *) die "up: unknown option '$1' (usage: up [--centers N] [--rtp-ports N])" ;;
        esac
    done
    need_root
    [[ $rtp_ports =~ ^[0-9]+$ ]] && ((rtp_ports >= 2 && rtp_ports <= RTP_PORTS_MAX && rtp_ports % 2 == 0)) \
        || die "--rtp-ports takes an even number from 2 to $RTP_PORTS_MAX (two ports a call), not '$rtp_ports'"
    mkdir -p "$STATE"
    if [ "$rtp_ports" = 1000 ]; then rm -f "$RTP_PORTS_FILE"; else echo "$rtp_ports" > "$RTP_PORTS_FILE"; fi
    [ -d "$CONF_SRC" ] || die "no configuration folder at $CONF_SRC"
    if [ -n "$centers" ]; then
        [[ $centers =~ ^[0-9]+$ ]] && ((centers >= CENTERS_MIN && centers <= CENTERS_MAX)) \
            || die "--centers takes a number from $CENTERS_MIN to $CENTERS_MAX, not '$centers'"
    fi
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
    say "RTP: ports $(main_rtp_range | tr ' ' '-') ($((rtp_ports / 2)) calls at once; --rtp-ports N for more)"
    say "SIP: udp ${IVR_SANDBOX_BIND:-127.0.0.1}:5060 (softphones: tester1..3, passwords in $STATE/tester-passwords)"
    say "WebRTC: wss://${IVR_SANDBOX_ARI_BIND:-127.0.0.1}:$MAIN_HTTPS_PORT/ws (video-guest, password in" \
        "$STATE/video-guest-password; interp1..3, passwords in $STATE/interpreter-passwords)"
    say "TLS: certificate ${IVR_SANDBOX_TLS_CERT:-$TLS_DIR/asterisk.crt}" \
        "${IVR_SANDBOX_TLS_CERT:+(from \$IVR_SANDBOX_TLS_CERT)}${IVR_SANDBOX_TLS_CERT:-(self-signed: a browser must trust it)}"
    if [ -n "$centers" ]; then
        up_centers "$centers"
    fi
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

# The main instance's processes: those not started with a center's asterisk.conf (-C).
main_pids() {
    local p
    for p in $(asterisk_pids); do
        [[ " $(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null) " == *" -C "* ]] || echo "$p"
    done
}

cmd_down() {
    need_root
    down_centers
    if [ "${1:-}" = --centers ]; then
        say "centers and Kamailio stopped (the main instance is left as it is)"
        return 0
    fi
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
    local pids
    until_gone asterisk_pids || true
    pids=$(asterisk_pids)
    [ -z "$pids" ] || die "Asterisk (pid $pids) did not stop"
    unmount_all
    [ -z "$(chroot_mounts)" ] || die "still mounted: $(chroot_mounts | tr '\n' ' ')"
    say "stopped"
}

# The main instance's line as always (exit 0 running, 3 stopped); then, when centers were
# started, one line per center and for Kamailio.  'status --centers': the exit code says
# whether the centers and Kamailio all run (0) or not (3).
cmd_status() {
    local rc=0 crc=0
    if is_running; then
        echo "running ($(mode): $(ast_rx 'core show uptime' 2>/dev/null | head -n1))"
    else
        echo "stopped"
        rc=3
    fi
    if [ -n "$(wanted_centers)" ] || [ -n "$(running_centers)" ] || [ -n "$(kamailio_pid)" ] \
            || [ "${1:-}" = --centers ]; then
        status_centers || crc=$?
    fi
    if [ "${1:-}" = --centers ]; then
        return "$crc"
    fi
    return "$rc"
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

cmd_logs() {  # [--center NAME | --kamailio] [N]
    case "${1:-}" in
        --center)
            [ "$#" -ge 2 ] || die "usage: sandbox.sh logs --center NAME [N]"
            center_k "$2" >/dev/null
            show_center_logs "$2" "${3:-50}" ;;
        --kamailio)
            if [ -s "$KAM_STATE/kamailio.log" ]; then
                echo "==> $KAM_STATE/kamailio.log <=="
                tail -n "${2:-50}" "$KAM_STATE/kamailio.log"
            else
                echo "no Kamailio log yet"
            fi ;;
        *) show_logs "${1:-50}" ;;
    esac
}

cmd_rx() {
    if [ "${1:-}" = --center ]; then
        [ "$#" -ge 3 ] || die "usage: sandbox.sh rx --center NAME 'CLI COMMAND'"
        local c=$2
        shift 2
        center_k "$c" >/dev/null
        center_running "$c" || { echo "sandbox: center $c is not running" >&2; return 3; }
        center_rx "$c" "$*"
        return
    fi
    [ "$#" -ge 1 ] || die "usage: sandbox.sh rx 'CLI COMMAND'"
    is_running || { echo "sandbox: Asterisk is not running (scripts/sandbox.sh up)" >&2; return 3; }
    ast_rx "$*"
}

# 'center stop|kill|start NAME': one center's Asterisk only (Kamailio and the others are left
# alone), to see the dispatcher take a box out and back.  'kill' is a crash (SIGKILL).
cmd_center() {
    [ "$#" -eq 2 ] || die "usage: sandbox.sh center start|stop|kill NAME"
    need_root
    local c=$2
    center_k "$c" >/dev/null
    [[ " $(wanted_centers | tr '\n' ' ') " == *" $c "* ]] \
        || die "center $c is not one of those 'up --centers' started ($(wanted_centers | tr '\n' ' '))"
    case "$1" in
        stop) stop_center "$c"; say "center $c stopped" ;;
        kill)
            local pids i
            pids=$(center_pids "$c")
            # shellcheck disable=SC2086
            [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
            for i in $(seq 1 50); do
                [ -z "$(center_pids "$c")" ] && break
                sleep 0.1
            done
            [ -z "$(center_pids "$c")" ] || die "$c's Asterisk did not die"
            say "center $c killed" ;;
        start)
            if center_running "$c"; then
                say "center $c is already running"
            else
                [ -z "$(center_pids "$c")" ] || stop_center "$c"
                start_center "$c"
                wait_center_booted "$c"
                say "center $c is up"
            fi ;;
        *) die "usage: sandbox.sh center start|stop|kill NAME" ;;
    esac
}

main() {
    local action=${1:-}
    shift || true
    case "$action" in
        up) cmd_up "$@" ;;
        build) need_root; [ "$(mode)" != chroot ] || build_chroot ;;
        down) cmd_down "$@" ;;
        status) cmd_status "$@" ;;
        logs) cmd_logs "$@" ;;
        rx) cmd_rx "$@" ;;
        center) cmd_center "$@" ;;
        *) echo "usage: $0 up [--centers N] [--rtp-ports N]|down [--centers]|status [--centers]|logs [--center NAME|--kamailio] [N]|rx [--center NAME] CMD|center start|stop|kill NAME" >&2; exit 2 ;;
    esac
}

main "$@"
