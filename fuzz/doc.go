// Package fuzz holds structure-aware mutators for checkpoint archives and
// a harness that runs mutated archives through package format's reader,
// verifier and extractor, watching for panics, hangs, sandbox escapes and
// unbounded allocations. `ckptinspect fuzz` drives [Run]; native
// `go test -fuzz` targets (FuzzMutatedArchive) reuse [Mutate] and [Exec].
//
// A seed archive is decoded once into a [Seed]: its compression and its
// tar entries (headers and contents, the manifest parsed). Each mutation
// copies the seed, changes one or more things a hostile archive could
// change, and re-encodes it:
//
//   - tar header fields: size, type (links, devices, FIFOs, directories),
//     mode, times, owners, PAX records, raw header bytes and checksums;
//   - manifest fields: version, member names, types, sizes, digests, the
//     parent reference, unknown fields, trailing data;
//   - member bytes: flips, inserts, truncations, with the manifest's size
//     and digest updated so the mutation reaches the CRIU image checks;
//   - compression: recompressed as zstd, gzip or none, split into extra
//     frames, truncated, garbage appended, frame headers corrupted;
//   - CRIU image entry sizes: the u32 size of an entry set to large,
//     off-by-one or zero values (digest fixed up);
//   - names with ".." elements, absolute names, and links (symlinks and
//     hard links out of the target, a file written through a link).
//
// Sealed archives ([MutateSealed], [ExecSealed]; one input in four, all
// with Options.Sealed) are the seed sealed to an age key made per run,
// then either its contents mutated as above before sealing, or its
// envelope mutated ([SealedMutations]: the clear line, the stanzas, the
// header's MAC, truncations at and within chunks, flipped payload bytes
// and tags, swapped chunks, a malformed signature trailer). An envelope
// mutation must be refused, both by seal.Open and by seal.OpenAt read
// to the end, with an error of [SealedErrors]: else the finding is
// KindAccepted or KindUnnamed. [TrailerCheck] is the hook of signature
// checking: once set, forged well-formed trailers are tried too.
//
// The package imports format (and format/criuimg, format/seal), never
// the reverse.
package fuzz
