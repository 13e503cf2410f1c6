# The option parser of every recipe's run.sh (in the manner of ESPnet's utils/parse_options.sh). run.sh declares
# its options as variables, one per line, then sources this file:
#
#   stage=0            # N: first stage to run
#   corpus=            # DIR: the Libri2Mix folder
#   mode=min           # min|max: mixture length
#   . "$(dirname "$0")/../common/parse_options.sh"
#
# - Every `name=default  # META: help` line above the `. .../parse_options.sh` line is an option `--name VALUE`
#   (or `--name=VALUE`; `-` in a name stands for `_`). A META of choices (`a|b|c`) is checked; the values of DIR options
#   are taken relative to the folder run.sh is called from.
# - `--work DIR`: where data/ and exp/ go (default: the recipe's folder); the script continues in it.
# - Words `key=value` are collected in the array `overrides` (conf.yml entries). Anything else is an error.
# - `--help` prints run.sh's header comment and the options with their defaults.
# Afterwards: `recipe` (run.sh's folder), `common` (this folder), `python` ($PYTHON, else the project's
# .venv/bin/python, else python3; commands run as "$python" -m sepaudio ...), PYTHONPATH starting with the project,
# and the helpers begin_stage, require and die.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi  # called as `sh run.sh`
set -euo pipefail
if (( BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] < 404 )); then set +u; fi  # older bash: "${empty[@]}" is unbound

_script=${BASH_SOURCE[1]}  # run.sh
recipe=$(cd "$(dirname "$_script")" && pwd)
common=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$recipe
overrides=()
# "name META: help" of each option, from the declarations above the line that sources this file
_options=$(sed -n -e '/^\. .*parse_options\.sh/q' \
  -e 's/^\([a-z][a-z0-9_]*\)=[^#]*\(#[[:space:]]*\(.*\)\)\{0,1\}$/\1 \3/p' "$_script")
_options+=$'\n'"work DIR: folder for data/ and exp/, where the relative paths of conf.yml point"

die() {  # die MESSAGE: stop with an error
  echo "$(basename "$recipe")/run.sh: $*" >&2
  exit 1
}

_declared() {  # _declared NAME: the "META: help" of option NAME; false when there is no such option
  local line
  line=$(grep -m1 "^$1 " <<< "$_options") || return 1
  echo "${line#* }"
}

_usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$_script"
  echo
  echo "Options (default in brackets):"
  local name help meta
  while read -r name help; do
    meta=${help%%: *}
    [ "$meta" != "$help" ] && [[ $meta != *" "* ]] || meta=VALUE
    printf '  %-24s' "--${name//_/-} $meta"
    [ ${#meta} -le $(( 20 - ${#name} )) ] || printf '\n%26s' ""
    printf ' %s%s\n' "${help#"$meta: "}" "${!name:+ [${!name}]}"
  done <<< "$_options"
  printf '  %-24s %s\n' "--help" "this message" "key=value" "override an entry of conf.yml, e.g. trainer.max_epochs=2"
}

while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) _usage; exit 0 ;;
    --*=*) _name=${1%%=*} _value=${1#*=}; shift ;;
    --*) [ $# -ge 2 ] || die "$1 needs a value (see --help)"; _name=$1 _value=$2; shift 2 ;;
    *=*) overrides+=("$1"); shift; continue ;;
    *) die "unexpected argument '$1': give options as --name VALUE and config entries as key=value (see --help)" ;;
  esac
  _name=${_name#--} && _name=${_name//-/_}
  [[ $_name =~ ^[a-z][a-z0-9_]*$ ]] && _help=$(_declared "$_name") || die "unknown option --${_name//_/-} (see --help)"
  _meta=${_help%%: *}
  case $_meta in
    DIR) [[ -z $_value || $_value == /* ]] || _value=$PWD/$_value ;;
    *"|"*) [[ "|$_meta|" == *"|$_value|"* ]] || die "--${_name//_/-} takes one of $_meta, not '$_value'" ;;
  esac
  printf -v "$_name" '%s' "$_value"
done
[[ $stage =~ ^[0-9]+$ && $stop_stage =~ ^[0-9]+$ ]] || die "--stage and --stop-stage take stage numbers"

begin_stage() {  # begin_stage N TITLE: true when stage N is within --stage .. --stop-stage; then prints its title
  [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ] || return 1
  echo "== stage $1: $2"
}

require() {  # require NAME...: stop unless options --NAME have values
  local name
  for name; do
    [ -n "${!name}" ] || die "give --${name//_/-}: $(_declared "$name" | sed 's/^[A-Z]*: //') (see --help)"
  done
}

if [ -n "${PYTHON:-}" ]; then
  python=$PYTHON
  [[ $python != */* || $python == /* ]] || python=$PWD/$python  # a relative path: from the calling folder
elif [ -x "$common/../../.venv/bin/python" ]; then
  python=$(cd "$common/../../.venv/bin" && pwd)/python
else
  python=python3
fi
export PYTHONPATH="$(cd "$common/../.." && pwd)${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's sepaudio
"$python" -c 'import importlib.util as u, sys; sys.exit(not all(map(u.find_spec, ("sepaudio", "torch"))))' \
  2> /dev/null || die "'$python' cannot import sepaudio and torch: make the project's .venv (make test) or set PYTHON"

mkdir -p "$work"
cd "$work"
work=$PWD
