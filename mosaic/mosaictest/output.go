package mosaictest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// outputLine is the repeated header line output files are made of.
func outputLine(agentID, inputSHA256 string, i int) string {
	return fmt.Sprintf("mosaic-fake output %d agent %s input %s\n", i, agentID, inputSHA256)
}

// OutputBytes is the single source of truth for what output i (0-based) of a
// run of agentID on an input whose SHA-256 (hex) is inputSHA256 contains: a
// header line naming all three, repeated and truncated to size bytes.
func OutputBytes(agentID, inputSHA256 string, i int, size int) []byte {
	if size <= 0 {
		return []byte{}
	}
	b := make([]byte, size)
	_, _ = io.ReadFull(newOutputReader(agentID, inputSHA256, i, size), b)
	return b
}

// outputReader serves OutputBytes without materialising it (io.ReadSeeker).
type outputReader struct {
	line string
	size int64
	pos  int64
}

func newOutputReader(agentID, inputSHA256 string, i int, size int) *outputReader {
	return &outputReader{line: outputLine(agentID, inputSHA256, i), size: int64(max(size, 0))}
}

func (o *outputReader) Read(p []byte) (int, error) {
	if o.pos >= o.size {
		return 0, io.EOF
	}
	n := 0
	l := int64(len(o.line))
	for n < len(p) && o.pos < o.size {
		off := o.pos % l
		c := copy(p[n:], o.line[off:min(l, off+o.size-o.pos)])
		n += c
		o.pos += int64(c)
	}
	return n, nil
}

func (o *outputReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += o.pos
	case io.SeekEnd:
		offset += o.size
	default:
		return 0, errors.New("outputReader: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("outputReader: negative position")
	}
	o.pos = offset
	return offset, nil
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
