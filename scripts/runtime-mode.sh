# Which runtime scripts/runtime.sh uses, as a function of facts about the host; sourced by
# scripts/runtime.sh, and by tests/setup/test_mode.py with made-up facts.
#
# choose_mode GLIBC PYTHON UID USERNS MISSING
#   GLIBC    the host's glibc version ("2.36"), empty if the C library is not glibc
#   PYTHON   the host python3's version ("3.11"), empty if there is no python3
#   UID      the user's id
#   USERNS   yes if an unprivileged user namespace can be made (unshare --user), else no
#   MISSING  what a rootless build lacks on this host (a tool, the Debian keyring), empty if nothing
# Prints two tab-separated fields: the mode (venv, chroot, rootless, or none) and one line
# saying why, the line a user sees; for none, the line says what to do.

version_at_least() {  # $1 >= $2, both MAJOR.MINOR
  local a1 a2 b1 b2
  IFS=. read -r a1 a2 _ <<<"$1"
  IFS=. read -r b1 b2 _ <<<"$2"
  [ -n "$a1" ] && [ "$a1" -gt "$b1" ] 2>/dev/null && return 0
  [ "$a1" = "$b1" ] && [ "${a2:-0}" -ge "$b2" ] 2>/dev/null
}

choose_mode() {
  local glibc=$1 python=$2 uid=$3 userns=$4 missing=$5
  local need="the TFX 1.21 wheels need glibc >= 2.38"
  if [ -n "$glibc" ] && version_at_least "$glibc" 2.38 \
      && [ -n "$python" ] && version_at_least "$python" 3.10 && ! version_at_least "$python" 3.14; then
    printf 'venv\tglibc %s and Python %s: using a plain virtual environment\n' "$glibc" "$python"
    return
  fi
  local why
  if [ -z "$glibc" ] || ! version_at_least "$glibc" 2.38; then
    why="$need, this host has ${glibc:+glibc }${glibc:-no glibc}"
  else
    why="a venv needs Python 3.10-3.13, this host has ${python:-no python3}"
  fi
  if [ "$uid" = 0 ]; then
    printf 'chroot\t%s: using a Debian 13 root (chroot)\n' "$why"
  elif [ "$userns" != yes ]; then
    printf 'none\t%s, and without root rights the Debian 13 root needs user namespaces, which this kernel refuses (unshare --user failed): ask an admin to set the sysctl user.max_user_namespaces above 0, or run as root\n' "$why"
  elif [ -n "$missing" ]; then
    printf 'none\t%s, and a rootless Debian 13 root cannot be built here: %s\n' "$why" "$missing"
  else
    printf 'rootless\tno root rights: using a rootless Debian 13 root (unshare); %s\n' "$why"
  fi
}
