// Package fileio holds the I/O helpers that format, inspect, incremental
// and the engine share: buffers of transparent huge pages, O_DIRECT
// writes and reads of an archive's file, a reader that stops with its
// context, a bounded read of a small file and the tail of a long one.
//
// Invariants:
//   - It imports only the standard library (format's depcheck_test.go
//     allows it for that reason) and builds on every GOOS; off Linux the
//     buffers come from the heap and there is no O_DIRECT.
//   - [HugeBuffer] and [HugeBuffers] return zeroed memory outside the Go
//     heap, starting on a huge-page boundary, which nothing may use after
//     its free function ran.
//   - A [DirectWriter] leaves exactly the bytes written (and patched by
//     WriteAt) in its file once Finish returned nil, also where the file
//     system refuses O_DIRECT writes (it falls back to plain ones).
//   - [ReadBounded] never reads more than its limit and one byte,
//     [ReadTail] never more than its n.
package fileio
