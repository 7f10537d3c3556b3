package wire

import "testing"

// FuzzDecoder feeds random bytes in random pieces. Whatever the bytes, the
// Decoder must not panic, must keep the handler's contract (recorder), must
// hold no buffer between frames (feedPieces), and must give the same events
// and the same close code whatever the cuts, and the same as the pull path.
//
// opts: bit 0 client role, bit 1 AllowRsv1, bits 2-7 a read limit of
// 7*(opts>>2) bytes (none when 0). cuts: each byte is the size of the next
// piece (0 stands for 256); what is left after the last cut is one piece.
func FuzzDecoder(f *testing.F) {
	for _, tc := range decoderCases() {
		if len(tc.in) > 4096 {
			continue
		}
		opts := byte(0)
		if tc.cfg.Role == Client {
			opts |= 1
		}
		if tc.cfg.AllowRsv1 {
			opts |= 2
		}
		f.Add(opts, tc.in, []byte{1, 2, 3, 5, 7, 11})
	}
	f.Add(byte(0), cat(frame(0x01, true, "κόσμε"), frame(0x89, true, "p"), frame(0x80, true, "\xf0\x9f\x98\x80")), []byte{9, 1, 1, 1})
	f.Add(byte(2|4<<2), cat(frame(0x41, true, "\xff"), frame(0x00, true, "abcdefghijklmnopqrstuvwxyz")), []byte{0})
	f.Add(byte(1), cat(frame(0x82, false, "x"), frame(0x88, false, "\x03\xe8")), []byte{2, 2, 2})
	f.Fuzz(func(t *testing.T, opts byte, data, cuts []byte) {
		cfg := DecoderConfig{AllowRsv1: opts&2 != 0, ReadLimit: 7 * int64(opts>>2)}
		if opts&1 != 0 {
			cfg.Role = Client
		}
		whole := feedPieces(t, cfg, [][]byte{data})
		sameEvents(t, "pull reference", whole, pullEvents(cfg, data))
		sameEvents(t, "fuzzed pieces", feedPieces(t, cfg, piecesOf(data, cuts)), whole)
		var bytewise [][]byte
		for i := range data {
			bytewise = append(bytewise, data[i:i+1])
		}
		sameEvents(t, "byte by byte", feedPieces(t, cfg, bytewise), whole)
	})
}

// piecesOf cuts data into pieces whose sizes cuts gives.
func piecesOf(data, cuts []byte) [][]byte {
	var out [][]byte
	for _, c := range cuts {
		if len(data) == 0 {
			break
		}
		n := min(len(data), int(c)+256*btoi(c == 0))
		out, data = append(out, data[:n]), data[n:]
	}
	return append(out, data)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
