#!/usr/bin/env bash
# compare - every training algorithm on its defaults, with no tuning flag,
# on the same job (Fashion-MNIST, 2 servers, 4 workers, the default 10
# epochs), and sparse logistic regression on its defaults: a table of final
# accuracy against the floor its defaults must reach (softmax 0.84, MLP
# 0.88), time to 84% and 88%, bytes moved and staleness, and a picture of
# test accuracy against wall time. Run by `make compare`; exits 1 when a
# run ends below its floor.
set -euo pipefail

BIN=${DESCENT_BIN:-build/release/descent}
OUT=${OUT:-runs/compare}
WORKERS=${WORKERS:-4}
mkdir -p "$OUT"
common=(--cluster.servers=2 --cluster.workers="$WORKERS"
        --job.progress=off --job.log_level=warn)

# name | floor | flags: only the algorithm and the model; everything else is
# the defaults (docs/configuration.md, "defaults by job").
runs=(
  "downpour-softmax|0.84|--train.algorithm=downpour"
  "dtadagrad-softmax|0.84|--train.algorithm=dtadagrad"
  "easgd-softmax|0.84|--train.algorithm=easgd"
  "downpour-mlp|0.88|--model.model=mlp"
  "dtadagrad-mlp|0.88|--model.model=mlp --train.algorithm=dtadagrad"
  "easgd-mlp|0.88|--model.model=mlp --train.algorithm=easgd"
  "logreg-sparse|0|--model.model=logreg --data.format=libsvm --data.train_file=$OUT/sparse/train.svm --data.test_file=$OUT/sparse/test.svm"
)

# The sparse job's data: 200,000 rows over 200,000 Zipf-distributed
# features, hashed into the default 2^20 keys.
mkdir -p "$OUT/sparse"
"$BIN" datagen --out "$OUT/sparse/train.svm" --test-out "$OUT/sparse/test.svm" \
  --n 200000 --features 200000 > "$OUT/sparse/datagen.log" 2>&1

# s_num FILE KEY prints the number after "KEY": in a JSON file.
s_num() { grep -o "\"$2\":[-0-9.e+]*" "$1" | head -n 1 | cut -d: -f2; }

# s_time_to FILE LEVEL: the first time rank 0's test accuracy reached LEVEL.
s_time_to() {
  awk -v level="$2" -F'[,:]' '
    /"rank":0,/ && /"final":false/ {
      for (i = 1; i < NF; i++) {
        if ($i == "{\"time\"") t = $(i + 1)
        if ($i == "\"test_accuracy\"" && $(i + 1) != "null" && $(i + 1) + 0 >= level) {
          printf "%.1f s", t; found = 1; exit
        }
      }
    }
    END { if (!found) printf "-" }' "$1"
}

table="$OUT/compare.md"
{
  echo "| run | test accuracy | floor | time to 0.84 | time to 0.88 | wall s | MB pushed | staleness max (updates / clocks) |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
} > "$table"
plot=""
below=""
for r in "${runs[@]}"; do
  name=${r%%|*}
  rest=${r#*|}
  floor=${rest%%|*}
  read -r -a flags <<< "${rest#*|}"
  dir="$OUT/$name"
  echo "compare: $name" >&2
  "$BIN" run "${common[@]}" "${flags[@]}" --job.out="$dir" > "$dir.log" 2>&1 ||
    { echo "compare: $name failed; see $dir.log" >&2; exit 1; }
  s="$dir/summary.json"
  acc=$(s_num "$s" test_accuracy)
  wall=$(s_num "$s" wall_seconds)
  mb=$(awk -v b="$(s_num "$s" bytes_pushed)" 'BEGIN { printf "%.0f", b / 1e6 }')
  su=$(grep -o '"staleness_updates":{"max":[-0-9]*' "$s" | grep -o '[-0-9]*$')
  sc=$(grep -o '"staleness_clocks":{"max":[-0-9]*' "$s" | grep -o '[-0-9]*$')
  ok=$(awk -v a="$acc" -v f="$floor" 'BEGIN { print (a + 0 >= f) ? "ok" : "BELOW" }')
  [ "$ok" = ok ] || below="$below $name"
  echo "| $name | $acc | $floor $ok | $(s_time_to "$dir/metrics.jsonl" 0.84) | $(s_time_to "$dir/metrics.jsonl" 0.88) | $wall | $mb | $su / $sc |" >> "$table"
  awk -F'[,:]' '/"rank":0,/ && /"final":false/ {
      for (i = 1; i < NF; i++) {
        if ($i == "{\"time\"") t = $(i + 1)
        if ($i == "\"test_accuracy\"") a = $(i + 1)
      }
      print t, a }' "$dir/metrics.jsonl" > "$dir.dat"
  plot="$plot${plot:+, }'$dir.dat' using 1:2 with linespoints title '$name'"
done
echo "" >> "$table"
echo "logreg-sparse: planted model's test accuracy $(s_num "$OUT/sparse/test.svm.json" planted_accuracy)" >> "$table"
cat "$table"
if command -v gnuplot > /dev/null; then
  gnuplot <<GP
set terminal pngcairo size 1100,700
set output '$OUT/compare.png'
set title 'Test accuracy against wall time (Fashion-MNIST, 2 servers, 4 workers)'
set xlabel 'wall time, s'
set ylabel 'test accuracy'
set key bottom right
set grid
set yrange [0.75:1.0]
plot $plot, 0.84 with lines dashtype 2 lc rgb 'gray' title '0.84', 0.88 with lines dashtype 2 lc rgb 'black' title '0.88'
GP
  echo "compare: wrote $OUT/compare.png and $table" >&2
else
  echo "compare: gnuplot not found (Debian package gnuplot-nox); table in $table" >&2
fi
if [ -n "$below" ]; then
  echo "compare: below the floor on their defaults:$below" >&2
  exit 1
fi
