#!/usr/bin/env bash
# The whole GPU round in one command, in two halves.
#
#   Local half (a machine with the JDK, Maven and network; no GPU needed):
#       scripts/gpu-round.sh local
#     builds the jars and test classes, a jlink runtime (java.base + jdk.incubator.vector + what JUnit needs) from
#     Temurin 25 as .runtime/gpu-round/jre.tar.gz, and fetches the JUnit console launcher from Maven Central, all into
#     the git-ignored .runtime/gpu-round/ (about 25 MB).
#
#   Remote half (the device machine: no JDK, no Maven, no network; PyTorch at /opt/torch/.venv, CUDA 13 in its wheels):
#       scripts/gpu-round.sh remote
#     unpacks the runtime, runs the engine tests (the CUDA cases run there: ops/*Test on cuda:0, CudaVsCpuTest,
#     CudaLedgerTest), the GPU benchmarks, and the PyTorch companion, and writes everything under $OUT:
#     junit/ (XML reports), tests.txt, bench-tally.jsonl, bench-torch.jsonl, report.md, env.txt.
#
#   Exact device invocation (the device tool), after the local half:
#       run(command="bash scripts/gpu-round.sh remote", carry=[".runtime/gpu-round"], timeout_s=600)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
stage="$root/.runtime/gpu-round"
JUNIT_CONSOLE_VERSION=1.11.4  # matches junit.version 5.11.4 in the root pom
JDK="${TALLY_JLINK_JDK:-/usr/lib/jvm/temurin-25-jdk-amd64}"
MODULES=java.base,java.logging,java.xml,jdk.unsupported,jdk.zipfs,jdk.incubator.vector  # jdk.zipfs: JUnit scans jars
JVM_FLAGS=(--enable-native-access=ALL-UNNAMED --add-modules=jdk.incubator.vector -Xss4m)

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
  echo "== JUnit console launcher $JUNIT_CONSOLE_VERSION from Maven Central"
  ./mvnw -q -B org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
    -Dartifact=org.junit.platform:junit-platform-console-standalone:$JUNIT_CONSOLE_VERSION \
    -DoutputDirectory="$stage" -N
  echo "== jlink runtime from $JDK ($MODULES)"
  "$JDK/bin/jlink" --add-modules "$MODULES" --strip-debug --no-man-pages --no-header-files \
    --output "$stage/jre"
  tar -C "$stage" -czf "$stage/jre.tar.gz" jre && rm -rf "$stage/jre"
  cp scripts/gpu_bench_torch.py "$stage/"
  echo "== self-check of the staged runtime on this machine"
  tmp="$(mktemp -d)"; tar -C "$tmp" -xzf "$stage/jre.tar.gz"
  "$tmp/jre/bin/java" "${JVM_FLAGS[@]}" -jar "$stage"/junit-platform-console-standalone-*.jar execute \
    --class-path "$(ls "$stage"/lib/*.jar | tr '\n' ':')" --scan-class-path "$stage/lib/tally-engine-tests.jar" \
    --include-classname '.*Cuda(GemmLayout|Libraries|VsCpu|Ledger)Test' --fail-if-no-tests --disable-banner --details=summary
  rm -rf "$tmp"
  du -sh "$stage"; ls -la "$stage" "$stage/lib"
  echo "now run on the device: run(command=\"bash scripts/gpu-round.sh remote\", carry=[\".runtime/gpu-round\"], timeout_s=600)"
}

remote_half() {
  out="${OUT:-$root/out}"; mkdir -p "$out"
  [[ -f "$stage/jre.tar.gz" ]] || { echo "gpu-round: $stage/jre.tar.gz missing: run 'scripts/gpu-round.sh local' first and carry .runtime/gpu-round" >&2; exit 1; }
  work="$(mktemp -d)"; tar -C "$work" -xzf "$stage/jre.tar.gz"
  java="$work/jre/bin/java"
  cp_jars="$(ls "$stage"/lib/*.jar | tr '\n' ':')"
  {
    echo "date: $(date -u)"; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || true
    "$java" -version 2>&1
    ls /opt/torch/.venv/lib/python3*/site-packages/nvidia/ 2>&1 || true
  } > "$out/env.txt"
  cat "$out/env.txt"
  echo "== engine tests (CUDA cases included)"
  set +e
  "$java" "${JVM_FLAGS[@]}" -jar "$stage"/junit-platform-console-standalone-*.jar execute \
    --class-path "$cp_jars" --scan-class-path "$stage/lib/tally-engine-tests.jar" \
    --reports-dir "$out/junit" --fail-if-no-tests --disable-banner --details=tree 2>&1 | tee "$out/tests.txt" | tail -n 80
  tests_rc=${PIPESTATUS[0]}
  echo "== Tally GPU benchmarks"
  "$java" "${JVM_FLAGS[@]}" -cp "$cp_jars" dev.tally.engine.cuda.CudaBenchmark "$out/bench-tally.jsonl" 2>&1 | tee "$out/bench-tally.txt"
  bench_rc=${PIPESTATUS[0]}
  echo "== PyTorch companion"
  py=/opt/torch/.venv/bin/python; [[ -x "$py" ]] || py=python3
  "$py" "$stage/gpu_bench_torch.py" "$out/bench-torch.jsonl" --compare "$out/bench-tally.jsonl" --report "$out/report.md" 2>&1 | tee "$out/bench-torch.txt"
  torch_rc=${PIPESTATUS[0]}
  set -e
  echo "tests rc=$tests_rc, tally bench rc=$bench_rc, torch bench rc=$torch_rc" | tee "$out/status.txt"
  rm -rf "$work"
  [[ $tests_rc == 0 && $bench_rc == 0 && $torch_rc == 0 ]]
}

case "${1:-}" in
  local) local_half ;;
  remote) remote_half ;;
  *) echo "usage: scripts/gpu-round.sh local|remote (see the comment at the top)" >&2; exit 2 ;;
esac
