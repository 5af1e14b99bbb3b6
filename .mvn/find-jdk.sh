# Finds the newest JDK >= 22 (POSIX sh; sourced by ./mvnw and ./tally). Prints its home, or nothing when none exists.
# Maven itself must run on it too, not only javac: the jar tool that packs a modular jar reads module-info.class, and
# an older JDK's jar tool rejects class files of release 22.
tally_java_major() {
  "$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p' | head -n 1
}

tally_find_jdk_home() {
  _best="" _best_v=0
  case $- in *f*) _noglob=1 ;; *) _noglob=0 ;; esac
  set +f # ./mvnw runs with globbing off; the search below needs it
  for _home in "${JAVA_HOME:-}" "$(dirname "$(dirname "$(readlink -f "$(command -v java 2>/dev/null || echo /nonexistent)" 2>/dev/null || echo /x/x)")")" \
      /usr/lib/jvm/* /usr/java/* /opt/* "$HOME"/.sdkman/candidates/java/* "$HOME"/.jdks/*; do
    [ -n "$_home" ] && [ -x "$_home/bin/java" ] && [ -x "$_home/bin/javac" ] || continue
    _v="$(tally_java_major "$_home/bin/java" 2>/dev/null)"
    case "$_v" in '' | *[!0-9]*) continue ;; esac
    if [ "$_v" -ge 22 ] && [ "$_v" -gt "$_best_v" ]; then _best="$_home" _best_v="$_v"; fi
  done
  [ "$_noglob" = 1 ] && set -f
  [ -n "$_best" ] && printf '%s\n' "$_best"
  return 0
}
