package pipeline

import (
	"bytes"
	"encoding/binary"
	"io"
)

// sniffContainer names the container format from a file's first bytes, or "" when the content
// is none of the formats Mosaic accepts. Uploading such a file would only fail later and cost
// an upload.
func sniffContainer(head []byte) string {
	switch {
	case len(head) >= 12 && bytes.Equal(head[4:8], []byte("ftyp")):
		return "mp4"
	case len(head) >= 8 && isQuickTimeAtom(head[4:8]):
		return "mov" // old QuickTime files may start with moov/mdat/wide/free instead of ftyp
	case len(head) >= 4 && bytes.Equal(head[:4], []byte{0x1A, 0x45, 0xDF, 0xA3}):
		return "matroska" // MKV and WebM (EBML)
	case len(head) >= 12 && bytes.Equal(head[:4], []byte("RIFF")) && bytes.Equal(head[8:12], []byte("AVI ")):
		return "avi"
	}
	return ""
}

func isQuickTimeAtom(t []byte) bool {
	switch string(t) {
	case "moov", "mdat", "wide", "free", "skip", "pnot":
		return true
	}
	return false
}

// videoMeta is what the older upload endpoint wants to know up front.
type videoMeta struct {
	Width, Height int
	DurationMS    int64
}

// probeVideo reads the duration (mvhd) and the first track's display size (tkhd) of an
// MP4/MOV file by walking box headers; other containers, or anything unexpected, give zeros.
func probeVideo(r io.ReaderAt, size int64) videoMeta {
	var m videoMeta
	walkBoxes(r, 0, size, func(typ string, off, n int64) bool {
		if typ != "moov" {
			return true
		}
		walkBoxes(r, off, off+n, func(typ string, off, n int64) bool {
			switch typ {
			case "mvhd":
				m.DurationMS = readMvhd(r, off, n)
			case "trak":
				if m.Width == 0 {
					walkBoxes(r, off, off+n, func(typ string, off, n int64) bool {
						if typ == "tkhd" {
							m.Width, m.Height = readTkhd(r, off, n)
						}
						return true
					})
				}
			}
			return true
		})
		return false
	})
	return m
}

// walkBoxes calls fn with the payload offset and length of each box in [start, end).
func walkBoxes(r io.ReaderAt, start, end int64, fn func(typ string, off, n int64) bool) {
	var hdr [16]byte
	for pos := start; pos+8 <= end; {
		if _, err := r.ReadAt(hdr[:8], pos); err != nil {
			return
		}
		size := int64(binary.BigEndian.Uint32(hdr[:4]))
		typ := string(hdr[4:8])
		head := int64(8)
		switch size {
		case 0:
			size = end - pos
		case 1:
			if _, err := r.ReadAt(hdr[8:16], pos+8); err != nil {
				return
			}
			size = int64(binary.BigEndian.Uint64(hdr[8:16]))
			head = 16
		}
		if size < head || pos+size > end {
			return
		}
		if !fn(typ, pos+head, size-head) {
			return
		}
		pos += size
	}
}

func readMvhd(r io.ReaderAt, off, n int64) int64 {
	var b [32]byte
	if n < 20 {
		return 0
	}
	if _, err := r.ReadAt(b[:min(int64(len(b)), n)], off); err != nil && err != io.EOF {
		return 0
	}
	var timescale, duration uint64
	if b[0] == 1 { // version 1: 64-bit times
		timescale = uint64(binary.BigEndian.Uint32(b[20:24]))
		duration = binary.BigEndian.Uint64(b[24:32])
	} else {
		timescale = uint64(binary.BigEndian.Uint32(b[12:16]))
		duration = uint64(binary.BigEndian.Uint32(b[16:20]))
	}
	if timescale == 0 {
		return 0
	}
	return int64(duration * 1000 / timescale)
}

func readTkhd(r io.ReaderAt, off, n int64) (int, int) {
	var b [92]byte
	if n < 84 {
		return 0, 0
	}
	if _, err := r.ReadAt(b[:min(int64(len(b)), n)], off); err != nil && err != io.EOF {
		return 0, 0
	}
	i := 76 // version 0: width/height are the last 8 bytes (16.16 fixed point)
	if b[0] == 1 {
		i = 88
		if n < 96 {
			return 0, 0
		}
		var c [8]byte
		if _, err := r.ReadAt(c[:], off+88); err != nil {
			return 0, 0
		}
		return int(binary.BigEndian.Uint32(c[:4]) >> 16), int(binary.BigEndian.Uint32(c[4:]) >> 16)
	}
	return int(binary.BigEndian.Uint32(b[i:i+4]) >> 16), int(binary.BigEndian.Uint32(b[i+4:i+8]) >> 16)
}
