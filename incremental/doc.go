// Package incremental makes a full CRIU dump incremental after the fact:
// page-level deduplication of a final image set against an earlier one,
// for pre-copy checkpoints on kernels without soft-dirty memory tracking.
//
// Placeholder: the full documentation follows.
package incremental
