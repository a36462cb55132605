// Package hostile holds the end-to-end hostile-archive corpus: real ckpt
// v1 exports, mutated and re-digested so that every digest checks out,
// each run against `ckptinspect verify` and `ckpt restore -i` as built
// from this tree, with sentinels around them; and containerd checkpoint
// images made from testdata/containerd's, changed and re-digested, each
// run against `ckpt restore containerd:DIR` (containerd_test.go). It has
// no API; its tests
// need root, CRIU and runc, and fail without them under CI=true.
//
// Invariants the tests check for every case:
//
//   - verify and restore exit with the expected status and name the
//     problem; a refused restore leaves no container record, staging
//     directory, volume, storage container or mount under the engine's
//     roots;
//   - nothing outside the engine's roots changes: the host's /dev and /,
//     its mounts, its cgroup hierarchies (a canary cgroup survives, no
//     release agent changes) and a canary file;
//   - each command stays within its time and memory bound
//     (caseTimeout, maxRSS).
package hostile
