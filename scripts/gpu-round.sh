#!/usr/bin/env bash
# The whole GPU round in one command, in two halves.
#
#   Local half (a machine with the JDK, Maven and network; no GPU needed):
#       scripts/gpu-round.sh local
#     builds the jars and test classes, a jlink runtime (java.base + jdk.incubator.vector + what JUnit needs) from
#     Temurin 25 as .runtime/gpu-round/jre.tar.gz, and JUnit's platform jars, all into the git-ignored
#     .runtime/gpu-round/ (about 25 MB), offline (JUnit's jars come from the local Maven repository, the tests run through
#     dev.tally.engine.testing.RoundTestRunner, no console launcher needed). Then it rehearses the remote half on this machine: every engine test class on
#     the staged runtime (CUDA cases skip here), the benchmarks (they fail without a GPU), the packing, and the check
#     that what would come back fits the device tool's limits (at most 8 files, each at most 16 MiB, 2 folders deep).
#
#   Remote half (the device machine: no JDK, no Maven, no network; PyTorch at /opt/torch/.venv):
#       scripts/gpu-round.sh remote
#     unpacks the runtime and runs, each under its own time limit so the packing always happens: every engine test
#     class with -Dtally.require.cuda=true (a CUDA backend that does not start fails the CUDA tests, with its cause),
#     the Tally GPU benchmarks, the PyTorch companion. Everything (tests.txt: one line per test, failures' traces; logs, JSONL figures, JVM crash logs
#     hs_err_<pid>.log) is packed into $OUT/gpu-round-results.tar.gz, beside a short $OUT/report.md: 2 files.
#
#   Exact device invocation (the device tool), after the local half:
#       run(command="bash scripts/gpu-round.sh remote", carry=[".runtime/gpu-round"], timeout_s=600)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
stage="$root/.runtime/gpu-round"
JDK="${TALLY_JLINK_JDK:-/usr/lib/jvm/temurin-25-jdk-amd64}"
MODULES=java.base,java.logging,java.xml,jdk.unsupported,jdk.zipfs,jdk.incubator.vector,jdk.management  # jdk.zipfs: JUnit scans jars
JVM_FLAGS=(--enable-native-access=ALL-UNNAMED --add-modules=jdk.incubator.vector -Xss4m)
# Limits of the device tool on what comes back from $OUT (see the device README)
MAX_FILES=8
MAX_FILE_BYTES=$((16 * 1024 * 1024))
MAX_DEPTH=2
# Seconds per phase of the remote half (under the tool's 600 s per command, leaving time to pack)
TESTS_S=330 BENCH_S=120 TORCH_S=100

local_half() {
  cd "$root"
  echo "== building jars and test classes"
  ./mvnw -q -B -pl engine -am package -DskipTests
  [[ -f native/target/classes/dev/tally/nativekernels/tally_kernels.fatbin ]] || {
    echo "gpu-round: native/ was built without nvcc: no kernels to test (install the CUDA toolkit or set NVCC)" >&2; exit 1; }
  rm -rf "$stage" && mkdir -p "$stage/lib"
  cp jextract/target/tally-jextract-*[0-9T].jar native/target/tally-native-*[0-9T].jar "$stage/lib/"
  cp engine/target/tally-engine-*[0-9T].jar "$stage/lib/tally-engine.jar"
  cp engine/target/tally-engine-*-tests.jar "$stage/lib/tally-engine-tests.jar"
  echo "== JUnit platform jars (engine's test dependencies, from the local Maven repository)"
  ./mvnw -q -B -o -pl engine org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies -DincludeScope=test \
    -DincludeGroupIds=org.junit.jupiter,org.junit.platform,org.opentest4j,org.apiguardian -DoutputDirectory="$stage/lib"
  echo "== jlink runtime from $JDK ($MODULES)"
  "$JDK/bin/jlink" --add-modules "$MODULES" --strip-debug --no-man-pages --no-header-files \
    --output "$stage/jre"
  tar -C "$stage" -czf "$stage/jre.tar.gz" jre && rm -rf "$stage/jre"
  cp scripts/gpu_bench_torch.py "$stage/"
  du -sh "$stage"; ls -la "$stage" "$stage/lib"

  echo "== rehearsal of the remote half on this machine (no GPU: CUDA tests skip, benchmarks fail)"
  rehearsal_out="$(mktemp -d)"
  # benchmarks fail here without a GPU, so the rehearsal's own status is not the verdict: the tests' status and the
  # shape of $OUT are
  OUT="$rehearsal_out" TALLY_ROUND_REHEARSAL=1 remote_half || true
  echo "== rehearsal: what would come back"
  find "$rehearsal_out" -printf '%y %10s %P\n' | sort -k3
  tar -tzf "$rehearsal_out/gpu-round-results.tar.gz" | sed 's/^/  in archive: /' | head -n 40
  check_out_dir "$rehearsal_out" || { echo "gpu-round: the remote half's output breaks the device tool's limits" >&2; exit 1; }
  [[ "$tests_rc" == 0 ]] || { echo "gpu-round: engine tests failed on the staged runtime (rc=$tests_rc), see above" >&2; exit 1; }
  classes="$(tar -xzOf "$rehearsal_out/gpu-round-results.tar.gz" results/tests.txt | grep -E '^(PASS|FAIL|SKIP) ' \
    | grep -oE '\[dev\.tally\.[a-zA-Z0-9_.$]+\]' | sort -u | wc -l)"
  # jqwik property tests (the safetensors fuzzer: CPU only, nothing CUDA) run on their own engine, not the round's runner
  sources="$(find engine/src/test/java -name '*Test.java' -exec grep -L 'net.jqwik' {} + | wc -l)"
  echo "rehearsal ran tests of $classes classes; engine/src/test has $sources JUnit *Test.java files"
  (( classes >= sources )) || { echo "gpu-round: not every engine test class ran on the staged runtime" >&2; exit 1; }
  rm -rf "$rehearsal_out"
  echo "local half done; now run on the device:"
  echo "  run(command=\"bash scripts/gpu-round.sh remote\", carry=[\".runtime/gpu-round\"], timeout_s=600)"
}

# Fails (naming each problem) when DIR holds more than MAX_FILES files, a file over MAX_FILE_BYTES, or anything more
# than MAX_DEPTH folders deep: what the device tool would not bring back whole.
check_out_dir() {
  local dir="$1" bad=0 files
  files="$(find "$dir" -type f | wc -l)"
  if (( files > MAX_FILES )); then echo "  $files files (at most $MAX_FILES come back)"; bad=1; fi
  while IFS= read -r f; do echo "  over $MAX_FILE_BYTES B: $f"; bad=1; done < <(find "$dir" -type f -size +"${MAX_FILE_BYTES}"c)
  while IFS= read -r f; do echo "  deeper than $MAX_DEPTH folders: $f"; bad=1; done < <(
    find "$dir" -mindepth $((MAX_DEPTH + 1)) -type d; find "$dir" -mindepth $((MAX_DEPTH + 2)) ! -type d)
  (( bad == 0 )) && echo "check_out_dir: $files file(s) in $dir, none over $MAX_FILE_BYTES B, at most $MAX_DEPTH folders deep"
  return $bad
}

remote_half() {
  out="${OUT:-$root/out}"; mkdir -p "$out"
  [[ -f "$stage/jre.tar.gz" ]] || { echo "gpu-round: $stage/jre.tar.gz missing: run 'scripts/gpu-round.sh local' first and carry .runtime/gpu-round" >&2; exit 1; }
  work="$(mktemp -d)"; tar -C "$work" -xzf "$stage/jre.tar.gz"
  res="$work/results"; mkdir -p "$res"
  java="$work/jre/bin/java"
  cp_jars="$(ls "$stage"/lib/*.jar | tr '\n' ':')"
  # a JVM crash (the likeliest first failure of new FFM code) leaves its log among the results
  jvm=("${JVM_FLAGS[@]}" "-XX:ErrorFile=$res/hs_err_%p.log")
  require=(-Dtally.require.cuda=true)
  [[ -n "${TALLY_ROUND_REHEARSAL:-}" ]] && require=()
  {
    echo "date: $(date -u)"; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || true
    "$java" -version 2>&1
    ls /opt/torch/.venv/lib/python3*/site-packages/nvidia/ 2>&1 || true
  } > "$res/env.txt"
  cat "$res/env.txt"
  echo "== engine tests, every class (${require[*]:-CUDA optional: rehearsal})"
  set +e
  timeout --kill-after=15 "$TESTS_S" "$java" "${jvm[@]}" "${require[@]}" -cp "$cp_jars" dev.tally.engine.testing.RoundTestRunner \
    dev.tally.engine "$res/tests.txt" > "$res/tests-console.txt" 2>&1
  tests_rc=$?
  grep -E '^(FAIL|tests found)' "$res/tests-console.txt" | tail -n 40
  echo "== Tally GPU benchmarks"
  timeout --kill-after=10 "$BENCH_S" "$java" "${jvm[@]}" -cp "$cp_jars" dev.tally.engine.cuda.CudaBenchmark "$res/bench-tally.jsonl" \
    > "$res/bench-tally.txt" 2>&1
  bench_rc=$?
  tail -n 20 "$res/bench-tally.txt"
  echo "== PyTorch companion"
  py=/opt/torch/.venv/bin/python; [[ -x "$py" ]] || py=python3
  timeout --kill-after=10 "$TORCH_S" "$py" "$stage/gpu_bench_torch.py" "$res/bench-torch.jsonl" --compare "$res/bench-tally.jsonl" \
    --report "$res/torch-report.md" > "$res/bench-torch.txt" 2>&1
  torch_rc=$?
  tail -n 20 "$res/bench-torch.txt"
  set -e
  write_report > "$out/report.md"
  tar -C "$work" -czf "$out/gpu-round-results.tar.gz" results
  # should the archive outgrow one returned file, it goes back in parts (cat gpu-round-results.tar.gz.part-* | tar -xz)
  if (( $(stat -c %s "$out/gpu-round-results.tar.gz") > MAX_FILE_BYTES )); then
    split -b $((MAX_FILE_BYTES - 1024)) -d -a 1 "$out/gpu-round-results.tar.gz" "$out/gpu-round-results.tar.gz.part-"
    rm "$out/gpu-round-results.tar.gz"
  fi
  rm -rf "$work"
  cat "$out/report.md"
  check_out_dir "$out" || echo "gpu-round: WARNING: some results will not come back whole" >&2
  [[ $tests_rc == 0 && $bench_rc == 0 && $torch_rc == 0 ]]
}

# The short report beside the archive: status, test summary, failures, crash logs, the figures.
write_report() {
  echo "# GPU round $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo
  echo "tests rc=$tests_rc, tally bench rc=$bench_rc, torch bench rc=$torch_rc (124/137: ran past its time limit)"
  echo
  echo '```'; head -n 3 "$res/env.txt"; echo '```'
  echo "## Tests"
  echo '```'
  grep -E '^tests found' "$res/tests.txt" 2>/dev/null || tail -n 15 "$res/tests-console.txt"
  echo '```'
  local failures; failures="$(grep -E '^FAIL ' "$res/tests-console.txt" | head -n 40 || true)"
  if [[ -n "$failures" ]]; then echo "Failures (first 40):"; echo '```'; echo "$failures"; echo '```'; fi
  local crashes; crashes="$(ls "$res"/hs_err_*.log 2>/dev/null || true)"
  if [[ -n "$crashes" ]]; then
    echo "## JVM crashes"
    for c in $crashes; do echo "$(basename "$c"):"; echo '```'; grep -m 8 -E '^(#  |# Problematic|j  |C  \[)' "$c" || true; echo '```'; done
  fi
  echo "## Tally benchmarks"
  echo '```'; cat "$res/bench-tally.jsonl" 2>/dev/null || tail -n 5 "$res/bench-tally.txt"; echo '```'
  echo "## PyTorch comparison"
  if [[ -f "$res/torch-report.md" ]]; then cat "$res/torch-report.md"; else echo '```'; tail -n 5 "$res/bench-torch.txt"; echo '```'; fi
  echo
  echo "Everything else: gpu-round-results.tar.gz (results/: tests.txt with every test and failure traces, tests-console.txt,"
  echo "env.txt, bench-*.jsonl/txt, hs_err_*.log)."
}

case "${1:-}" in
  local) local_half ;;
  remote) remote_half ;;
  *) echo "usage: scripts/gpu-round.sh local|remote (see the comment at the top)" >&2; exit 2 ;;
esac
