#!/usr/bin/env bash
# compare - every training algorithm with its recommended settings on the
# same job (Fashion-MNIST, 2 servers, 4 workers, 15 epochs): a table of
# final accuracy, time to 84% and 88%, bytes moved and staleness, and a
# picture of test accuracy against wall time. Run by `make compare`.
set -euo pipefail

BIN=${DESCENT_BIN:-build/release/descent}
OUT=${OUT:-runs/compare}
EPOCHS=${EPOCHS:-15}
mkdir -p "$OUT"
common=(--cluster.servers=2 --cluster.workers=4 --train.epochs="$EPOCHS"
        --job.progress=off --job.log_level=warn)

# name | flags: the settings each algorithm is recommended with here.
runs=(
  "downpour-softmax|--train.algorithm=downpour"
  "dtadagrad-softmax|--train.algorithm=dtadagrad --optimizer.lr=0.2"
  "easgd-softmax|--train.algorithm=easgd --optimizer.lr=0.1 --train.easgd_delta=0.9 --train.tau=4"
  "downpour-mlp|--model.model=mlp --optimizer.name=adam --optimizer.lr=0.001"
  "dtadagrad-mlp|--model.model=mlp --train.algorithm=dtadagrad --optimizer.lr=0.2"
  "easgd-mlp|--model.model=mlp --train.algorithm=easgd --optimizer.lr=0.1 --train.easgd_delta=0.9 --train.tau=2"
  "logreg-sparse|--model.model=logreg --data.format=libsvm --data.train_file=$OUT/sparse/train.svm --data.test_file=$OUT/sparse/test.svm --data.hash_bits=16 --optimizer.name=adam --optimizer.lr=0.05 --train.epochs=10"
)

# The sparse job's data: a planted model over 1,000 hashed features.
mkdir -p "$OUT/sparse"
"$BIN" datagen --out "$OUT/sparse/train.svm" --test-out "$OUT/sparse/test.svm" \
  --n 200000 --features 1000 > "$OUT/sparse/datagen.log" 2>&1

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
  echo "| run | test accuracy | time to 0.84 | time to 0.88 | wall s | MB pushed | staleness max (updates / clocks) |"
  echo "| --- | --- | --- | --- | --- | --- | --- |"
} > "$table"
plot=""
for r in "${runs[@]}"; do
  name=${r%%|*}
  read -r -a flags <<< "${r#*|}"
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
  echo "| $name | $acc | $(s_time_to "$dir/metrics.jsonl" 0.84) | $(s_time_to "$dir/metrics.jsonl" 0.88) | $wall | $mb | $su / $sc |" >> "$table"
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
