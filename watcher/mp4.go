package watcher

import (
	"encoding/binary"
	"fmt"
	"io"
)

// maxBoxes bounds the header walk so a corrupt file cannot keep us busy.
const maxBoxes = 1 << 16

// checkBoxes reads only the top-level ISO-BMFF box headers of a file of the
// given size (pread at each box offset, payloads are skipped) and returns ""
// when the boxes tile the file exactly and include moov, else why not.
func checkBoxes(r io.ReaderAt, size int64) string {
	var hdr [16]byte
	var pos int64
	moov := false
	for n := 0; pos < size; n++ {
		if n >= maxBoxes {
			return fmt.Sprintf("mp4 has more than %d top-level boxes", maxBoxes)
		}
		if size-pos < 8 {
			return fmt.Sprintf("mp4 has %d trailing bytes after the last box", size-pos)
		}
		if _, err := r.ReadAt(hdr[:8], pos); err != nil {
			return fmt.Sprintf("cannot read mp4 box header at offset %d: %v", pos, err)
		}
		boxSize := int64(binary.BigEndian.Uint32(hdr[:4]))
		typ := string(hdr[4:8])
		hdrLen := int64(8)
		switch boxSize {
		case 1:
			if size-pos < 16 {
				return fmt.Sprintf("mp4 box %q at offset %d is cut short", printable(typ), pos)
			}
			if _, err := r.ReadAt(hdr[8:16], pos+8); err != nil {
				return fmt.Sprintf("cannot read mp4 box header at offset %d: %v", pos, err)
			}
			large := binary.BigEndian.Uint64(hdr[8:16])
			if large > uint64(size) {
				return fmt.Sprintf("mp4 box %q at offset %d extends past end of file", printable(typ), pos)
			}
			boxSize = int64(large)
			hdrLen = 16
		case 0:
			boxSize = size - pos
		}
		if boxSize < hdrLen {
			return fmt.Sprintf("mp4 box %q at offset %d has invalid size %d", printable(typ), pos, boxSize)
		}
		if boxSize > size-pos {
			return fmt.Sprintf("mp4 box %q at offset %d extends past end of file", printable(typ), pos)
		}
		if typ == "moov" {
			moov = true
		}
		pos += boxSize
	}
	if !moov {
		return "mp4 has no moov box yet"
	}
	return ""
}

func printable(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}
