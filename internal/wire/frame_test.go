package wire

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

func TestDecodeHeaderFixtures(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string // bits
		want Header
		n    int
	}{
		{
			name: "unmasked text, RFC 6455 5.7 \"Hello\"",
			in:   "1000 0001  0 0000101",
			want: Header{Fin: true, Opcode: OpText, Length: 5},
			n:    2,
		},
		{
			name: "masked text, RFC 6455 5.7 \"Hello\"",
			in:   "1000 0001  1 0000101  00110111 11111010 00100001 00111101",
			want: Header{Fin: true, Opcode: OpText, Masked: true, Key: [4]byte{0x37, 0xfa, 0x21, 0x3d}, Length: 5},
			n:    6,
		},
		{
			name: "first fragment",
			in:   "0000 0001  0 0000011",
			want: Header{Opcode: OpText, Length: 3},
			n:    2,
		},
		{
			name: "final continuation",
			in:   "1000 0000  0 0000010",
			want: Header{Fin: true, Opcode: OpContinuation, Length: 2},
			n:    2,
		},
		{
			name: "ping",
			in:   "1000 1001  0 0000101",
			want: Header{Fin: true, Opcode: OpPing, Length: 5},
			n:    2,
		},
		{
			name: "empty close",
			in:   "1000 1000  0 0000000",
			want: Header{Fin: true, Opcode: OpClose},
			n:    2,
		},
		{
			name: "rsv1 rsv2 rsv3 binary",
			in:   "1111 0010  0 0000000",
			want: Header{Fin: true, Rsv: Rsv1 | Rsv2 | Rsv3, Opcode: OpBinary},
			n:    2,
		},
		{
			name: "rsv2 only, reserved opcode",
			in:   "0010 0011  0 0000001",
			want: Header{Rsv: Rsv2, Opcode: 3, Length: 1},
			n:    2,
		},
		{
			name: "7-bit length 125",
			in:   "1000 0010  0 1111101",
			want: Header{Fin: true, Opcode: OpBinary, Length: 125},
			n:    2,
		},
		{
			name: "16-bit length 256, RFC 6455 5.7",
			in:   "1000 0010  0 1111110  00000001 00000000",
			want: Header{Fin: true, Opcode: OpBinary, Length: 256},
			n:    4,
		},
		{
			name: "64-bit length 65536, RFC 6455 5.7",
			in:   "1000 0010  0 1111111  00000000 00000000 00000000 00000000 00000000 00000001 00000000 00000000",
			want: Header{Fin: true, Opcode: OpBinary, Length: 65536},
			n:    10,
		},
		{
			name: "masked 64-bit length",
			in:   "1000 0010  1 1111111  00000000 00000000 00000000 00000001 00000000 00000000 00000000 00000000  00000001 00000010 00000011 00000100",
			want: Header{Fin: true, Opcode: OpBinary, Masked: true, Key: [4]byte{1, 2, 3, 4}, Length: 1 << 32},
			n:    14,
		},
		{
			name: "largest legal 64-bit length",
			in:   "1000 0010  0 1111111  01111111 11111111 11111111 11111111 11111111 11111111 11111111 11111111",
			want: Header{Fin: true, Opcode: OpBinary, Length: 1<<63 - 1},
			n:    10,
		},
		{
			name: "non-minimal 16-bit encoding of 5 is accepted",
			in:   "1000 0001  0 1111110  00000000 00000101",
			want: Header{Fin: true, Opcode: OpText, Length: 5},
			n:    4,
		},
		{
			name: "non-minimal 64-bit encoding of 126 is accepted",
			in:   "1000 0001  0 1111111  00000000 00000000 00000000 00000000 00000000 00000000 00000000 01111110",
			want: Header{Fin: true, Opcode: OpText, Length: 126},
			n:    10,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bits(tc.in)
			if got := HeaderSize(b[0], b[1]); got != tc.n {
				t.Errorf("HeaderSize = %d, want %d", got, tc.n)
			}
			// Trailing payload bytes must not be consumed.
			in := append(append([]byte{}, b...), "payload"...)
			h, n, err := DecodeHeader(in)
			if err != nil {
				t.Fatalf("DecodeHeader: %v", err)
			}
			if h != tc.want || n != tc.n {
				t.Fatalf("DecodeHeader = %+v, %d; want %+v, %d", h, n, tc.want, tc.n)
			}
		})
	}
}

func TestEncodeHeaderFixtures(t *testing.T) {
	for _, tc := range []struct {
		h    Header
		want string // bits
	}{
		{Header{Fin: true, Opcode: OpText, Length: 5}, "1000 0001  0 0000101"},
		{Header{Fin: true, Opcode: OpText, Masked: true, Key: [4]byte{0x37, 0xfa, 0x21, 0x3d}, Length: 5},
			"1000 0001  1 0000101  00110111 11111010 00100001 00111101"},
		{Header{Opcode: OpBinary}, "0000 0010  0 0000000"},
		{Header{Fin: true, Rsv: Rsv1, Opcode: OpText, Length: 1}, "1100 0001  0 0000001"},
		{Header{Fin: true, Opcode: OpPong, Length: 125}, "1000 1010  0 1111101"},
		{Header{Fin: true, Opcode: OpBinary, Length: 126}, "1000 0010  0 1111110  00000000 01111110"},
		{Header{Fin: true, Opcode: OpBinary, Length: 65535}, "1000 0010  0 1111110  11111111 11111111"},
		{Header{Fin: true, Opcode: OpBinary, Length: 65536},
			"1000 0010  0 1111111  00000000 00000000 00000000 00000000 00000000 00000001 00000000 00000000"},
		{Header{Fin: true, Opcode: OpBinary, Length: 1 << 32, Masked: true, Key: [4]byte{0xde, 0xad, 0xbe, 0xef}},
			"1000 0010  1 1111111  00000000 00000000 00000000 00000001 00000000 00000000 00000000 00000000  11011110 10101101 10111110 11101111"},
		// Bits outside their field are dropped, not smeared into other fields.
		{Header{Fin: true, Rsv: 0xff, Opcode: 0xf1, Length: 0}, "1111 0001  0 0000000"},
	} {
		t.Run(tc.h.String(), func(t *testing.T) {
			want := bits(tc.want)
			var b [MaxHeaderSize]byte
			n := PutHeader(b[:], tc.h)
			if !bytes.Equal(b[:n], want) {
				t.Errorf("PutHeader = %08b, want %08b", b[:n], want)
			}
			if got := AppendHeader([]byte("xy"), tc.h); !bytes.Equal(got, append([]byte("xy"), want...)) {
				t.Errorf("AppendHeader = %08b, want xy + %08b", got, want)
			}
		})
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	lengths := []int64{0, 1, 125, 126, 127, 65535, 65536, 1<<32 - 1, 1 << 32, 1<<63 - 1}
	for _, length := range lengths {
		for _, masked := range []bool{false, true} {
			for _, fin := range []bool{false, true} {
				for _, op := range []Opcode{OpContinuation, OpText, OpBinary, OpClose, OpPing, OpPong, 0x3, 0xF} {
					for _, rsv := range []uint8{0, Rsv1, Rsv2 | Rsv3} {
						h := Header{Fin: fin, Rsv: rsv, Opcode: op, Masked: masked, Length: length}
						if masked {
							h.Key = [4]byte{0x01, 0x80, 0xfe, 0x7f}
						}
						wantN := 2
						switch {
						case length > 0xffff:
							wantN += 8
						case length > 125:
							wantN += 2
						}
						if masked {
							wantN += 4
						}
						var b [MaxHeaderSize]byte
						n := PutHeader(b[:], h)
						if n != wantN {
							t.Fatalf("%v: PutHeader wrote %d bytes, want %d", h, n, wantN)
						}
						if hs := HeaderSize(b[0], b[1]); hs != n {
							t.Fatalf("%v: HeaderSize = %d, PutHeader wrote %d", h, hs, n)
						}
						got, gotN, err := DecodeHeader(b[:n])
						if err != nil {
							t.Fatalf("%v: DecodeHeader: %v", h, err)
						}
						if got != h || gotN != n {
							t.Fatalf("round trip: got %+v (%d bytes), want %+v (%d bytes)", got, gotN, h, n)
						}
					}
				}
			}
		}
	}
}

func TestDecodeHeaderLengthMSB(t *testing.T) {
	for _, in := range []string{
		"1000 0010  0 1111111  10000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000",
		"1000 0010  0 1111111  11111111 11111111 11111111 11111111 11111111 11111111 11111111 11111111",
		"1000 0010  1 1111111  10000000 00000000 00000000 00000000 00000000 00000000 00000000 00000001  00000001 00000010 00000011 00000100",
	} {
		b := bits(in)
		h, n, err := DecodeHeader(b)
		if err == nil {
			t.Fatalf("DecodeHeader(% x) = %+v, %d, nil; want a protocol error", b, h, n)
		}
		if errors.Is(err, ErrShortHeader) {
			t.Fatalf("DecodeHeader(% x): got ErrShortHeader for a whole header", b)
		}
		wantProtocolError(t, err, CloseProtocolError)
		if n != 0 {
			t.Errorf("DecodeHeader(% x) consumed %d bytes on error", b, n)
		}
	}
}

func TestDecodeHeaderShort(t *testing.T) {
	for _, in := range []string{
		"1000 0001  0 0000101",
		"1000 0001  1 0000101  00110111 11111010 00100001 00111101",
		"1000 0010  0 1111110  00000001 00000000",
		"1000 0010  1 1111110  00000001 00000000  00000001 00000010 00000011 00000100",
		"1000 0010  0 1111111  00000000 00000000 00000000 00000000 00000000 00000001 00000000 00000000",
		"1000 0010  1 1111111  00000000 00000000 00000000 00000000 00000000 00000001 00000000 00000000  00000001 00000010 00000011 00000100",
		// A bad 64-bit length is still reported as short until it is all there.
		"1000 0010  0 1111111  10000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000",
	} {
		b := bits(in)
		for i := 0; i < len(b); i++ {
			h, n, err := DecodeHeader(b[:i])
			if !errors.Is(err, ErrShortHeader) {
				t.Errorf("DecodeHeader(% x) = %+v, %d, %v; want ErrShortHeader", b[:i], h, n, err)
			}
			if n != 0 {
				t.Errorf("DecodeHeader(% x) consumed %d bytes", b[:i], n)
			}
		}
	}
}

func TestHeaderSizeTable(t *testing.T) {
	for _, tc := range []struct {
		b1   byte
		want int
	}{
		{0x00, 2}, {0x7d, 2}, {0x7e, 4}, {0x7f, 10},
		{0x80, 6}, {0xfd, 6}, {0xfe, 8}, {0xff, 14},
	} {
		for _, b0 := range []byte{0x00, 0x81, 0xff} {
			if got := HeaderSize(b0, tc.b1); got != tc.want {
				t.Errorf("HeaderSize(%#x, %#x) = %d, want %d", b0, tc.b1, got, tc.want)
			}
		}
	}
}

func TestOpcode(t *testing.T) {
	for op := Opcode(0); op < 16; op++ {
		wantControl := op >= 8
		wantReserved := (op >= 3 && op <= 7) || op >= 0xB
		if got := op.IsControl(); got != wantControl {
			t.Errorf("%v.IsControl() = %t, want %t", op, got, wantControl)
		}
		if got := op.IsReserved(); got != wantReserved {
			t.Errorf("%v.IsReserved() = %t, want %t", op, got, wantReserved)
		}
	}
	for op, want := range map[Opcode]string{
		OpContinuation: "CONT", OpText: "TEXT", OpBinary: "BINARY",
		OpClose: "CLOSE", OpPing: "PING", OpPong: "PONG", 3: "OP3", 0xB: "OPB",
	} {
		if got := op.String(); got != want {
			t.Errorf("Opcode(%d).String() = %q, want %q", uint8(op), got, want)
		}
	}
}

func TestHeaderString(t *testing.T) {
	for _, tc := range []struct {
		h    Header
		want string
	}{
		{Header{Fin: true, Opcode: OpText, Length: 5}, "TEXT len=5 rsv=0x0 masked=false"},
		{Header{Opcode: OpBinary, Rsv: Rsv1, Masked: true, Length: 70000}, "BINARY len=70000 rsv=0x4 masked=true [fragment]"},
	} {
		if got := tc.h.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

func ExampleDecodeHeader() {
	h, n, err := DecodeHeader(bits("1000 0001  1 0000101  00110111 11111010 00100001 00111101"))
	fmt.Println(h, n, err)
	// Output: TEXT len=5 rsv=0x0 masked=true 6 <nil>
}
