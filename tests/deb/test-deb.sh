#!/bin/bash
# `make test-deb`: installs the package into a fresh Debian root, as an
# administrator would, and checks what its maintainer scripts do.
#
# usage: tests/deb/test-deb.sh build/proxmox-backup-keystore_<version>_<arch>.deb
#
# The root is unpacked from a debootstrap tarball cached by mkroot.sh, and
# used with chroot. systemd does not run there: /run/systemd/system exists so
# the dh_installsystemd snippets act as on a systemd host, and a policy-rc.d
# that logs and refuses every action stands in for the service manager
# (deb-systemd-invoke asks it first). Keys come from the configdir-example
# vectors ($PBS_VECTORS_DIR or ../shared/vectors), a copy of a real PBS
# host's files. Needs root, debootstrap (first run only), dpkg-deb,
# systemd-analyze.
#
# Prints one "ok"/"FAIL" line per check and "N passed, N failed" at the end;
# on failure the root is kept for inspection and its path printed.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

deb="${1:?usage: $0 PACKAGE.deb}"
deb="$(realpath "$deb")"
[ -f "$deb" ] || { echo "test-deb: no package $deb (run make deb)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "test-deb: needs root (chroot, chown)" >&2; exit 2; }

vectors="${PBS_VECTORS_DIR:-$repo/../shared/vectors}/configdir-example"
[ -f "$vectors/encryption-keys.cfg" ] ||
    { echo "test-deb: no key vectors in $vectors (set PBS_VECTORS_DIR)" >&2; exit 2; }

pkg="$(dpkg-deb -f "$deb" Package)"
version="$(dpkg-deb -f "$deb" Version)"
upgrade_version="$version+upgradetest1"

tarball="$("$here/mkroot.sh")"
work="$(mktemp -d /var/tmp/pbs-test-deb.XXXXXX)"
root="$work/root"
log="$work/log"

CFG=/etc/proxmox-backup
KEYDIR=$CFG/encryption-keys
MANAGER=/usr/sbin/proxmox-backup-manager

passed=0
failed=0
proc_mounted=""
daemon_pid=""
cleanup() {
    if [ -n "$daemon_pid" ]; then kill -KILL "$daemon_pid" 2>/dev/null || true; fi
    if [ -n "$proc_mounted" ]; then umount "$root/proc" || true; fi
}
trap cleanup EXIT
ok() { passed=$((passed + 1)); echo "ok - $*"; }
fail() { failed=$((failed + 1)); echo "FAIL - $*"; }
# check DESCRIPTION COMMAND...: the command's success is the check
check() {
    local what="$1"
    shift
    if "$@" >"$work/check.out" 2>&1; then ok "$what"; else fail "$what"; sed 's/^/    | /' "$work/check.out"; fi
}

finish() {
    cleanup
    echo "$passed passed, $failed failed"
    if [ "$failed" -eq 0 ]; then
        rm -rf --one-file-system "$work"
    else
        echo "test-deb: root kept for inspection: $root (logs in $work)"
        exit 1
    fi
}

# runs a command in the root as an administrator's root shell would
in_root() {
    chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}

# run_logged NAME COMMAND...: runs it in the root, output to $log.NAME;
# returns its exit status
run_logged() {
    local name="$1"
    shift
    local rc=0
    in_root "$@" >"$log.$name" 2>&1 || rc=$?
    return $rc
}

# stat_of PATH: "user:group mode" of PATH in the root
stat_of() { in_root stat -c '%U:%G %a' "$1" 2>&1; }
expect_stat() { # PATH USER:GROUP MODE
    local got
    got="$(stat_of "$1")"
    if [ "$got" = "$2 $3" ]; then ok "$1 is $2 $3"; else fail "$1 is $2 $3 (found: $got)"; fi
}
expect_in_log() { # NAME REGEX DESCRIPTION
    if grep -Eq -- "$2" "$log.$1"; then ok "$3"; else
        fail "$3 (no /$2/ in $1 output)"
        sed 's/^/    | /' "$log.$1"
    fi
}
expect_not_in_log() { # NAME REGEX DESCRIPTION
    if ! grep -Eq -- "$2" "$log.$1"; then ok "$3"; else
        fail "$3 (/$2/ in $1 output)"
        sed 's/^/    | /' "$log.$1"
    fi
}
# state: owners, modes and contents of everything the package cares about
snapshot() {
    in_root sh -c 'find /etc/proxmox-backup /usr/sbin/proxmox-backup-manager \
            /lib/systemd/system/proxmox-backup-api.service /etc/systemd/system \
            -printf "%p %u:%g %m %y\n" 2>/dev/null | sort
        find /etc/proxmox-backup -type f -exec sha256sum {} + | sort
        getent passwd backup; getent group backup' >"$1"
}
keys_digest() { in_root sh -c 'cd /etc/proxmox-backup && sha256sum encryption-keys.cfg encryption-keys/*.enc'; }
log_digest() { in_root sha256sum /etc/proxmox-backup/encryption-keys/.audit/log; }

echo "test-deb: $pkg $version in $root"

# --- the package itself -----------------------------------------------------

check "package is named proxmox-backup-keystore" test "$pkg" = proxmox-backup-keystore
check "package conflicts with proxmox-backup-server" \
    sh -c "dpkg-deb -f '$deb' Conflicts | grep -qw proxmox-backup-server"
# debian/rules refuses a Cargo.toml version other than the changelog's
mkdir -p "$work/vcheck/debian"
cp "$repo/Cargo.toml" "$work/vcheck/"
cp "$repo/debian/rules" "$work/vcheck/debian/"
(cd "$work/vcheck" && make -s -f debian/rules override_dh_auto_configure DEB_VERSION_UPSTREAM=0.0.0-not-cargo \
    >"$log.vcheck" 2>&1) && rc=0 || rc=$?
if [ "$rc" -ne 0 ] && grep -q "version mismatch" "$log.vcheck"; then
    ok "debian/rules refuses a changelog version other than Cargo.toml's"
else
    fail "debian/rules refuses a changelog version other than Cargo.toml's (exit $rc)"
    sed 's/^/    | /' "$log.vcheck"
fi

# --- a root without a backup user: postinst creates it ------------------------

setup_root() {
    rm -rf --one-file-system "$root"
    mkdir -p "$root"
    tar -C "$root" -xf "$tarball"
    # the service manager's stand-in: record what the maintainer scripts ask for
    cat >"$root/usr/sbin/policy-rc.d" <<'EOF'
#!/bin/sh
echo "$*" >>/var/log/policy-rc.d.log
exit 101
EOF
    chmod 0755 "$root/usr/sbin/policy-rc.d"
    mkdir -p "$root/run/systemd/system"
    # apt's pty logging needs /dev/pts, which is not mounted
    echo 'Dpkg::Use-Pty "0";' >"$root/etc/apt/apt.conf.d/90test-deb"
    cp "$deb" "$root/tmp/$pkg.deb"
}

setup_root
in_root userdel backup
in_root sh -c 'if getent group backup >/dev/null; then groupdel backup; fi'
check "the root starts without a backup user" sh -c "! chroot '$root' getent passwd backup"
if run_logged nouser apt-get install -y "/tmp/$pkg.deb"; then
    ok "install without a backup user succeeds"
else
    fail "install without a backup user succeeds"
    sed 's/^/    | /' "$log.nouser"
fi
check "postinst created the backup user" in_root getent passwd backup
check "postinst created the backup group" in_root getent group backup
check "the new backup user has no login shell" sh -c "chroot '$root' getent passwd backup | grep -q ':/usr/sbin/nologin\$'"
expect_not_in_log nouser "[Ww]arn" "creating the backup user prints no warning"
expect_stat $CFG backup:backup 700
expect_stat $KEYDIR root:backup 750

# --- fresh install on a fresh root -------------------------------------------

setup_root
if run_logged install apt-get install -y "/tmp/$pkg.deb"; then
    ok "apt-get install of the package succeeds"
else
    fail "apt-get install of the package succeeds"
    sed 's/^/    | /' "$log.install"
    finish
fi
expect_stat $CFG backup:backup 700
expect_stat $KEYDIR root:backup 750
expect_stat $MANAGER root:root 755
expect_stat /usr/libexec/proxmox-backup/proxmox-backup-api root:root 755
check "bash completion is installed" in_root test -s /usr/share/bash-completion/completions/proxmox-backup-manager
check "bash completion completes proxmox-backup-manager" \
    in_root grep -q proxmox-backup-manager /usr/share/bash-completion/completions/proxmox-backup-manager
check "man page is installed" in_root test -s /usr/share/man/man1/proxmox-backup-manager.1.gz
check "the daemon's man page is installed" in_root test -s /usr/share/man/man8/proxmox-backup-api.8.gz
check "the unit is installed" in_root test -f /lib/systemd/system/proxmox-backup-api.service
check "the unit is enabled" in_root test -L /etc/systemd/system/multi-user.target.wants/proxmox-backup-api.service
check "postinst asked to start the service" grep -q "proxmox-backup-api.service start" "$root/var/log/policy-rc.d.log"
check "the trash purge timer is installed" in_root test -f /lib/systemd/system/proxmox-backup-keystore-trash-purge.timer
check "the trash purge service is installed" in_root test -f /lib/systemd/system/proxmox-backup-keystore-trash-purge.service
check "the trash purge timer is enabled" in_root test -L /etc/systemd/system/timers.target.wants/proxmox-backup-keystore-trash-purge.timer
check "postinst asked to start the trash purge timer" grep -q "proxmox-backup-keystore-trash-purge.timer start" "$root/var/log/policy-rc.d.log"
check "postinst did not run a purge" sh -c "! grep -q 'proxmox-backup-keystore-trash-purge.service start' '$root/var/log/policy-rc.d.log'"
check "the manager runs in the root" in_root $MANAGER --version
expect_in_log install "verified, no problems found" "postinst reports a clean verify on an empty store"
expect_stat $KEYDIR/.audit root:backup 750
expect_in_log install "audit log verified, no problems found" "postinst reports a clean audit log"

check "the man page renders without warnings" sh -c \
    "man --warnings -l '$root/usr/share/man/man1/proxmox-backup-manager.1.gz' 2>&1 >/dev/null | (! grep .)"
check "the daemon's man page renders without warnings" sh -c \
    "man --warnings -l '$root/usr/share/man/man8/proxmox-backup-api.8.gz' 2>&1 >/dev/null | (! grep .)"

# the unit file, checked by systemd with the installed binary (the man page
# of Documentation= is checked above: systemd-analyze would look on the host)
for unit in proxmox-backup-api.service proxmox-backup-keystore-trash-purge.service \
    proxmox-backup-keystore-trash-purge.timer; do
    if systemd-analyze verify --man=no --root="$root" "$unit" >"$log.analyze" 2>&1 &&
        ! grep -v "^$" "$log.analyze" | grep -q .; then
        ok "systemd-analyze verify passes on the installed $unit"
    else
        fail "systemd-analyze verify passes on the installed $unit"
        sed 's/^/    | /' "$log.analyze"
    fi
done

if systemd-analyze security --offline=true --root="$root" proxmox-backup-api.service >"$log.security" 2>&1; then :; fi
exposure="$(sed -n 's/.*Overall exposure level for proxmox-backup-api.service: \([0-9.]*\).*/\1/p' "$log.security")"
if [ -n "$exposure" ] && awk "BEGIN { exit !($exposure < 4.0) }"; then
    ok "systemd-analyze security rates the unit's exposure $exposure (< 4.0)"
else
    fail "systemd-analyze security rates the unit's exposure below 4.0 (found: ${exposure:-none})"
    tail -n 5 "$log.security" | sed 's/^/    | /'
fi

# --- the daily purge, as its installed service runs it -----------------------
# a key removed (keep time 0) of which no verified copy is recorded: the
# service's own command keeps it and says so; then it is purged by hand
purge_cmd="$(sed -n 's/^ExecStart=//p' "$root/lib/systemd/system/proxmox-backup-keystore-trash-purge.service")"
in_root $MANAGER encryption-key create purge-probe >/dev/null
in_root $MANAGER encryption-key archive purge-probe
in_root $MANAGER encryption-key remove purge-probe --keep-days 0 >/dev/null
check "the service's purge keeps a key without a verified copy" \
    sh -c "chroot '$root' $purge_cmd | grep -q \"^kept 'purge-probe@.*no verified copy\""
check "that key is still in the trash" in_root sh -c "ls $KEYDIR/.trash/purge-probe@*.enc"
check "a purge by name destroys it when told to" \
    in_root $MANAGER encryption-key trash purge purge-probe --without-verified-copy
check "the trash is empty again" in_root sh -c "! ls $KEYDIR/.trash/purge-probe@* 2>/dev/null"

# --- keys of a real PBS host ------------------------------------------------

mkdir -p "$root/tmp/vectors"
cp -r "$vectors/encryption-keys.cfg" "$vectors/encryption-keys" "$root/tmp/vectors/"
in_root install -o root -g backup -m 0640 /tmp/vectors/encryption-keys.cfg $CFG/encryption-keys.cfg
in_root sh -c "install -o root -g backup -m 0640 /tmp/vectors/encryption-keys/*.enc $KEYDIR/"
check "the manager lists the copied keys" sh -c "chroot '$root' $MANAGER encryption-key list --include-archived | grep -q offsite-2025"
if run_logged verify1 $MANAGER encryption-key verify; then
    ok "verify is clean on the copied keys"
else
    fail "verify is clean on the copied keys"
    sed 's/^/    | /' "$log.verify1"
fi
keys_before="$(keys_digest)"

# an audited operation that leaves the keys alone: the log, its checkpoint
# and its signing key appear with their owners and modes
if run_logged audited $MANAGER user create deb-test@pbs; then
    ok "an audited operation (user create) succeeds"
else
    fail "an audited operation (user create) succeeds"
    sed 's/^/    | /' "$log.audited"
fi
expect_stat $KEYDIR/.audit/log root:backup 640
expect_stat $KEYDIR/.audit/checkpoint root:backup 640
expect_stat $KEYDIR/.audit/signing.key root:root 600
check "the log holds the operation, by root@pam on the CLI" \
    sh -c "chroot '$root' $MANAGER --output-format json audit list --operation user-create | grep -q '\"actor\":\"root@pam\",\"unix-user\":\"root\",\"origin\":\"cli\"'"
check "audit verify is clean" in_root $MANAGER audit verify

# the unit's CapabilityBoundingSet is enough for the library's writes: with
# only those capabilities, root recreates the lock files (owner backup, set
# after creating them as root) in the backup:backup 0700 config dir
caps="$(sed -n 's/^CapabilityBoundingSet=//p' "$root/lib/systemd/system/proxmox-backup-api.service" |
    tr ' ' '\n' | sed -n 's/^CAP_\(.*\)/+\L\1/p' | paste -sd, -)"
in_root rm -f $CFG/.encryption-keys.lck $CFG/.sync.lck
if run_logged caps setpriv --bounding-set="-all,$caps" --inh-caps=-all -- $MANAGER encryption-key verify; then
    ok "verify works with only the unit's capabilities ($caps)"
else
    fail "verify works with only the unit's capabilities ($caps)"
    sed 's/^/    | /' "$log.caps"
fi
expect_stat $CFG/.encryption-keys.lck backup:backup 660

# --- the daemon, confined as by its unit -------------------------------------

# Started by hand with the unit's capability bounding set (systemd does not
# run here): it must create its TLS certificate in the backup:backup 0700
# config dir, answer HTTPS on loopback and stop cleanly on SIGTERM.
port=$((20000 + RANDOM % 20000))
proc_mounted=""
if mount -t proc proc "$root/proc" 2>/dev/null; then proc_mounted=1; fi
in_root rm -f $CFG/proxy.key $CFG/proxy.pem
# not through in_root, a function: $! must be the daemon (chroot, env and
# setpriv exec it), not a subshell
chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    setpriv --bounding-set="-all,$caps" --inh-caps=-all -- \
    /usr/libexec/proxmox-backup/proxmox-backup-api --listen "127.0.0.1:$port" >"$log.daemon" 2>&1 &
daemon_pid=$!
# ready when it accepts connections (30 s at most); then one request, given
# time for the daemon's delayed answer to an unauthenticated call (3 s upstream)
for _ in $(seq 1 60); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    kill -0 "$daemon_pid" 2>/dev/null || break
    sleep 0.5
done
code="$(curl -sk -o /dev/null -w '%{http_code}' --max-time 20 "https://127.0.0.1:$port/api2/json/version" || true)"
if [ "$code" = 200 ] || [ "$code" = 401 ]; then
    ok "the daemon answers GET /api2/json/version over HTTPS (HTTP $code)"
else
    fail "the daemon answers GET /api2/json/version over HTTPS (HTTP $code)"
    sed 's/^/    | /' "$log.daemon"
fi
expect_stat $CFG/proxy.key root:backup 640
check "the daemon wrote its certificate" in_root test -s $CFG/proxy.pem
rc=0
if kill -TERM "$daemon_pid" 2>/dev/null; then
    for _ in $(seq 1 20); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$daemon_pid" 2>/dev/null || true
fi
wait "$daemon_pid" || rc=$?
daemon_pid=""
if [ "$rc" = 0 ]; then ok "the daemon exits 0 on SIGTERM"; else
    fail "the daemon exits 0 on SIGTERM (exit status $rc)"
    sed 's/^/    | /' "$log.daemon"
fi
if [ -n "$proc_mounted" ]; then umount "$root/proc"; fi
proc_mounted=""

# --- second install: nothing changes -----------------------------------------

snapshot "$work/state1"
if run_logged reinstall apt-get install -y --reinstall "/tmp/$pkg.deb"; then
    ok "reinstalling the same version succeeds"
else
    fail "reinstalling the same version succeeds"
    sed 's/^/    | /' "$log.reinstall"
fi
snapshot "$work/state2"
check "reinstall changed no owner, mode or content" diff -u "$work/state1" "$work/state2"
expect_not_in_log reinstall "repaired" "reinstall repaired nothing"
run_logged postinst2 "/var/lib/dpkg/info/$pkg.postinst" configure "$version" || true
snapshot "$work/state3"
check "running postinst configure again changed nothing" diff -u "$work/state1" "$work/state3"
expect_not_in_log postinst2 "repaired" "running postinst configure again repaired nothing"

# --- upgrade: broken modes and owners are repaired ----------------------------

# a higher version of the same package, as a later release would be
mkdir -p "$work/upgrade"
dpkg-deb -R "$deb" "$work/upgrade/pkg"
sed -i "s/^Version: .*/Version: $upgrade_version/" "$work/upgrade/pkg/DEBIAN/control"
dpkg-deb --root-owner-group -Znone -b "$work/upgrade/pkg" "$root/tmp/${pkg}_upgrade.deb" >/dev/null

in_root chmod 0644 $KEYDIR/offsite-2025.enc
in_root chown root:root $KEYDIR/legacy-2024.enc
in_root chmod 0600 $KEYDIR/tape.sync_01.enc
in_root chown root:root $CFG/encryption-keys.cfg
in_root chmod 0644 $CFG/encryption-keys.cfg
in_root chmod 0755 $KEYDIR $CFG
in_root chown root:root $CFG
in_root chmod 0644 $CFG/.encryption-keys.lck
in_root chown root:root $CFG/.encryption-keys.lck
in_root sh -c "touch $KEYDIR/offsite-2025.enc.lck && chmod 0600 $KEYDIR/offsite-2025.enc.lck"
in_root chmod 0644 $KEYDIR/.audit/log
in_root chmod 0640 $KEYDIR/.audit/signing.key
in_root chmod 0755 $KEYDIR/.audit
log_before="$(log_digest)"
: >"$root/var/log/policy-rc.d.log"

if run_logged upgrade apt-get install -y "/tmp/${pkg}_upgrade.deb"; then
    ok "upgrade to $upgrade_version succeeds"
else
    fail "upgrade to $upgrade_version succeeds"
    sed 's/^/    | /' "$log.upgrade"
fi
check "upgraded version is installed" sh -c "chroot '$root' dpkg-query -W -f='\${Version}' $pkg | grep -qx '$upgrade_version'"
expect_stat $KEYDIR/offsite-2025.enc root:backup 640
expect_stat $KEYDIR/legacy-2024.enc root:backup 640
expect_stat $KEYDIR/tape.sync_01.enc root:backup 640
expect_stat $CFG/encryption-keys.cfg root:backup 640
expect_stat $KEYDIR root:backup 750
expect_stat $CFG backup:backup 700
expect_stat $CFG/.encryption-keys.lck backup:backup 660
expect_stat $KEYDIR/offsite-2025.enc.lck backup:backup 660
expect_stat $KEYDIR/.audit root:backup 750
expect_stat $KEYDIR/.audit/log root:backup 640
expect_stat $KEYDIR/.audit/signing.key root:root 600
check "the audit log is unchanged by the upgrade" test "$(log_digest)" = "$log_before"
expect_in_log upgrade "audit log verified, no problems found" "postinst reports a clean audit log after the repairs"
expect_in_log upgrade "repaired \"$KEYDIR/offsite-2025.enc\": mode 0644 -> 0640" "postinst says it repaired the 0644 key file"
expect_in_log upgrade "repaired \"$CFG/encryption-keys.cfg\": owner root:root -> root:backup" "postinst says it repaired the config owner"
expect_in_log upgrade "verified, no problems found" "postinst reports a clean verify after the repairs"
check "keys are unchanged by the upgrade" test "$(keys_digest)" = "$keys_before"
check "the service was restarted after the upgrade" grep -Eq "proxmox-backup-api.service (re|try-re)start" "$root/var/log/policy-rc.d.log"

# the backup user owns the config dir: a symlink it plants must not make
# postinst chown or chmod the file behind it
in_root sh -c 'echo secret > /root/secret && chmod 0600 /root/secret'
in_root ln -s /root/secret $CFG/sync.cfg
run_logged symlink dpkg-reconfigure "$pkg" || true
check "the symlinked file's owner and mode are untouched" test "$(stat_of /root/secret)" = "root:root 600"
expect_in_log symlink "not repairing \"$CFG/sync.cfg\" - it is a symlink" "postinst warns about the symlink"
in_root rm $CFG/sync.cfg

# ... nor may one it swaps in while postinst runs: the backup user trades
# encryption-keys/ for a link to a directory of root's and back, over and
# over. Whatever postinst reaches through that link it must leave alone (a
# chown root:backup 0640 of root's own *.enc copies there would hand them
# to the backup user).
in_root sh -c 'mkdir -p /root/decoy/.audit /root/decoy/.trash /root/decoy/.locks &&
    cd /root/decoy && for f in victim.enc victim.enc.lck .audit/log .audit/checkpoint \
        .audit/log.lck .audit/pending.lck; do echo secret >$f && chmod 0600 $f; done'
decoy_state() { in_root sh -c 'cd /root/decoy && find . -printf "%p %u:%g %m\n" | sort'; }
decoy_before="$(decoy_state)"
rm -f "$root/tmp/stop-swapping"
# renameat2(RENAME_EXCHANGE) (x86_64 syscall 316): the two names trade
# places at once, so the key directory is never missing, only swapped
chroot --userspec=backup:backup "$root" perl -e '
    chdir "/etc/proxmox-backup" or die "chdir: $!\n";
    symlink "/root/decoy", "decoy-link" or die "symlink: $!\n";
    my ($keys, $link) = ("encryption-keys", "decoy-link");
    my $swap = sub { syscall(316, -100, $keys, -100, $link, 2) == 0 or die "renameat2: $!\n" };
    my $swaps = 0;
    $swap->(), $swaps++ until -e "/tmp/stop-swapping";
    $swap->() if -l "encryption-keys";
    unlink "decoy-link" or die "unlink: $!\n";
    print "$swaps swaps\n";' >"$log.swapper" 2>&1 &
swapper=$!
for i in 1 2 3 4 5 6 7 8; do
    in_root /var/lib/dpkg/info/$pkg.postinst configure "$version" >"$log.swapped.$i" 2>&1 || true
done
touch "$root/tmp/stop-swapping"
rc=0
wait "$swapper" || rc=$?
check "the backup user swapped the key directory for a link, many times" \
    sh -c "[ $rc -eq 0 ] && grep -Eq '^[0-9]{4,} swaps' '$log.swapper'"
check "postinst changed nothing behind a link swapped in while it ran" test "$(decoy_state)" = "$decoy_before"
check "the key store is back in place after the swapping" test "$(keys_digest)" = "$keys_before"
expect_stat $KEYDIR root:backup 750
in_root rm -rf /root/decoy

# the backup user puts a config of its own in place of root's (it owns the
# config dir): postinst must not make it root's, as verify --repair does not
in_root cp -p $CFG/encryption-keys.cfg /root/keys-cfg.saved
in_root sh -c "cp $CFG/encryption-keys.cfg $CFG/forged.cfg && chown backup:backup $CFG/forged.cfg && chmod 0640 $CFG/forged.cfg && mv -f $CFG/forged.cfg $CFG/encryption-keys.cfg"
run_logged forged dpkg-reconfigure "$pkg" || true
expect_stat $CFG/encryption-keys.cfg backup:backup 640
expect_in_log forged "not repairing \"$CFG/encryption-keys.cfg\" - owned by backup" "postinst leaves a config of the backup user's and says so"
in_root cp -p /root/keys-cfg.saved $CFG/encryption-keys.cfg
expect_stat $CFG/encryption-keys.cfg root:backup 640

# ... nor may it rename a file of root's that holds a secret to a name
# postinst repairs for it (a lock file) or for its group (a config file):
# postinst must leave each as it is, as verify --repair does
in_root sh -c "echo secret > $CFG/secret.key && chmod 0600 $CFG/secret.key &&
    echo secret > $CFG/secret.json && chmod 0600 $CFG/secret.json"
chroot --userspec=backup:backup "$root" sh -c "cd $CFG && mv .encryption-keys.lck lock.away &&
    mv secret.key .encryption-keys.lck && mv sync.cfg sync.away 2>/dev/null; mv secret.json sync.cfg"
run_logged renamed dpkg-reconfigure "$pkg" || true
expect_stat $CFG/.encryption-keys.lck root:root 600
expect_stat $CFG/sync.cfg root:root 600
expect_in_log renamed "not repairing \"$CFG/.encryption-keys.lck\" - it holds data" "postinst leaves root's secret renamed over a lock file and says so"
in_root sh -c "cd $CFG && rm .encryption-keys.lck sync.cfg && mv lock.away .encryption-keys.lck &&
    if [ -e sync.away ]; then mv sync.away sync.cfg; fi"

# --- verify findings are printed, never fail the install ---------------------

in_root install -o root -g backup -m 0640 $KEYDIR/offsite-2025.enc $KEYDIR/orphan-key.enc
if run_logged findings dpkg-reconfigure "$pkg"; then
    ok "configure succeeds although verify finds an orphan key file"
else
    fail "configure succeeds although verify finds an orphan key file"
    sed 's/^/    | /' "$log.findings"
fi
expect_in_log findings "verify' found problems" "postinst prints that verify found problems"
expect_in_log findings "orphan-key" "postinst prints the finding naming the orphan key file"
check "postinst removed no file" in_root test -f $KEYDIR/orphan-key.enc
in_root rm $KEYDIR/orphan-key.enc

in_root cp -p $CFG/encryption-keys.cfg /root/cfg.saved
in_root sh -c "printf 'this is not a section config\n' > $CFG/encryption-keys.cfg"
if run_logged cannotcheck dpkg-reconfigure "$pkg"; then
    ok "configure succeeds although verify cannot read the config"
else
    fail "configure succeeds although verify cannot read the config"
    sed 's/^/    | /' "$log.cannotcheck"
fi
expect_in_log cannotcheck "could not verify|verify' found problems" "postinst reports that verify could not check"
in_root cp -p /root/cfg.saved $CFG/encryption-keys.cfg

# --- remove and purge keep the keys ------------------------------------------

: >"$root/var/log/policy-rc.d.log"
if run_logged remove apt-get remove -y "$pkg"; then ok "apt-get remove succeeds"; else
    fail "apt-get remove succeeds"
    sed 's/^/    | /' "$log.remove"
fi
check "prerm asked to stop the service" grep -q "proxmox-backup-api.service stop" "$root/var/log/policy-rc.d.log"
check "the binaries are gone after remove" in_root test ! -e $MANAGER
check "keys are kept on remove" test "$(keys_digest)" = "$keys_before"

if run_logged purge apt-get purge -y "$pkg"; then ok "apt-get purge succeeds"; else
    fail "apt-get purge succeeds"
    sed 's/^/    | /' "$log.purge"
fi
check "the package is gone after purge" sh -c "! chroot '$root' dpkg-query -W -f='\${Status}' $pkg 2>/dev/null | grep -q installed"
check "keys and config are kept on purge" test "$(keys_digest)" = "$keys_before"
check "the audit log is kept on purge" test "$(log_digest)" = "$log_before"
expect_in_log purge "audit log" "purge says the audit log was kept"
expect_stat $KEYDIR/offsite-2025.enc root:backup 640
expect_stat $CFG/encryption-keys.cfg root:backup 640
expect_in_log purge "NOT removed" "purge says the keys were not removed"
expect_in_log purge "$KEYDIR" "purge names where the keys remain"
expect_in_log purge "rm -r $KEYDIR $CFG/encryption-keys.cfg" "purge says how to remove them by hand"
check "the unit is no longer enabled after purge" \
    in_root test ! -e /etc/systemd/system/multi-user.target.wants/proxmox-backup-api.service

# --- install again: the kept keys work ----------------------------------------

if run_logged again apt-get install -y "/tmp/$pkg.deb"; then ok "install after purge succeeds"; else
    fail "install after purge succeeds"
    sed 's/^/    | /' "$log.again"
fi
expect_in_log again "verified, no problems found" "the kept keys verify clean after installing again"
check "the kept keys are listed again" sh -c "chroot '$root' $MANAGER encryption-key list | grep -q offsite-2025"

finish
