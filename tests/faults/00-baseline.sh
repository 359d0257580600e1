# The fault-free run: its accuracy is the reference of the others.
. "$(dirname "$0")/lib.sh"
start baseline
finish
check_invariants
summary .test_accuracy >"$WORK/baseline.acc"
