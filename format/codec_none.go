package format

import "io"

// None is no compression: the tar stream as it is.
const None Compression = "none"

// noneCodec is the uncompressed tar: what a stream that starts with no
// codec's magic is, written in no frames.
var noneCodec = &codec{
	name: None,
	newReader: func(r io.Reader, _ int) (io.ReadCloser, error) {
		return io.NopCloser(r), nil
	},
}
