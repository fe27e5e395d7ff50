// Package sample makes the small videos the demo drops into its folder and the tests feed the
// daemon.
package sample

import (
	"encoding/binary"
)

// MP4 builds a small, structurally whole MP4 (ftyp, moov with mvhd and a video tkhd,
// mdat carrying payload): enough for the watcher's completeness check and the pipeline's
// container sniffing. It is not playable video; the demo only needs bytes that look whole.
func MP4(durationMS int, width, height int, payload []byte) []byte {
	box := func(typ string, parts ...[]byte) []byte {
		n := 8
		for _, p := range parts {
			n += len(p)
		}
		b := make([]byte, 8, n)
		binary.BigEndian.PutUint32(b, uint32(n))
		copy(b[4:], typ)
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	u32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

	ftyp := box("ftyp", []byte("isom"), u32(0x200), []byte("isomiso2mp41"))

	mvhd := make([]byte, 100)                                 // version 0
	binary.BigEndian.PutUint32(mvhd[12:], 1000)               // timescale: ms
	binary.BigEndian.PutUint32(mvhd[16:], uint32(durationMS)) // duration
	binary.BigEndian.PutUint32(mvhd[20:], 0x00010000)         // rate 1.0
	binary.BigEndian.PutUint16(mvhd[24:], 0x0100)             // volume 1.0
	binary.BigEndian.PutUint32(mvhd[96:], 2)                  // next track id

	tkhd := make([]byte, 84)                                  // version 0
	tkhd[3] = 3                                               // enabled, in movie
	binary.BigEndian.PutUint32(tkhd[12:], 1)                  // track id
	binary.BigEndian.PutUint32(tkhd[20:], uint32(durationMS)) // duration
	binary.BigEndian.PutUint32(tkhd[76:], uint32(width)<<16)
	binary.BigEndian.PutUint32(tkhd[80:], uint32(height)<<16)

	moov := box("moov", box("mvhd", mvhd), box("trak", box("tkhd", tkhd)))
	mdat := box("mdat", payload)
	out := append(ftyp, moov...)
	return append(out, mdat...)
}
