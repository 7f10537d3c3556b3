package wire

import (
	"testing"
)

// fr builds a header for the rules tests. Masked is filled in per role by
// runSteps unless the step overrides it.
func fr(fin bool, rsv uint8, op Opcode, length int64) Header {
	return Header{Fin: fin, Rsv: rsv, Opcode: op, Length: length}
}

type step struct {
	h       Header
	op      Opcode // opcode Next must return when errCode is 0
	errCode uint16 // expected *ProtocolError code, 0 for none
	inMsg   bool   // InMessage() after the step
}

// runSteps feeds the steps to r, setting the mask bit the role expects.
func runSteps(t *testing.T, r *Reader, steps []step) {
	t.Helper()
	for i, s := range steps {
		h := s.h
		h.Masked = r.Role == Server
		if h.Masked {
			h.Key = [4]byte{1, 2, 3, 4}
		}
		before := r.InMessage()
		op, err := r.Next(h)
		if s.errCode != 0 {
			if err == nil {
				t.Fatalf("step %d (%v): Next = %v, nil; want error %d", i, h, op, s.errCode)
			}
			wantProtocolError(t, err, s.errCode)
			if op != 0 {
				t.Errorf("step %d (%v): opcode %v returned with an error", i, h, op)
			}
			if r.InMessage() != before {
				t.Errorf("step %d (%v): an error changed InMessage", i, h)
			}
			return
		}
		if err != nil {
			t.Fatalf("step %d (%v): Next: %v", i, h, err)
		}
		if op != s.op {
			t.Fatalf("step %d (%v): Next = %v, want %v", i, h, op, s.op)
		}
		if r.InMessage() != s.inMsg {
			t.Fatalf("step %d (%v): InMessage() = %t, want %t", i, h, r.InMessage(), s.inMsg)
		}
	}
}

func TestReaderRules(t *testing.T) {
	const pe = CloseProtocolError
	type tc struct {
		name      string
		allowRsv1 bool
		steps     []step
	}
	cases := []tc{
		{name: "single text", steps: []step{{h: fr(true, 0, OpText, 5), op: OpText}}},
		{name: "single binary", steps: []step{{h: fr(true, 0, OpBinary, 1<<40), op: OpBinary}}},
		{name: "close 125", steps: []step{{h: fr(true, 0, OpClose, 125), op: OpClose}}},
		{name: "ping 0", steps: []step{{h: fr(true, 0, OpPing, 0), op: OpPing}}},
		{name: "pong 125", steps: []step{{h: fr(true, 0, OpPong, 125), op: OpPong}}},
		{name: "ping 126", steps: []step{{h: fr(true, 0, OpPing, 126), errCode: pe}}},
		{name: "close 126", steps: []step{{h: fr(true, 0, OpClose, 126), errCode: pe}}},
		{name: "pong 65536", steps: []step{{h: fr(true, 0, OpPong, 65536), errCode: pe}}},
		{name: "fragmented ping", steps: []step{{h: fr(false, 0, OpPing, 1), errCode: pe}}},
		{name: "fragmented close", steps: []step{{h: fr(false, 0, OpClose, 2), errCode: pe}}},
		{name: "fragmented pong", steps: []step{{h: fr(false, 0, OpPong, 0), errCode: pe}}},
		{name: "RSV1 text without extension", steps: []step{{h: fr(true, Rsv1, OpText, 1), errCode: pe}}},
		{name: "RSV2 text", steps: []step{{h: fr(true, Rsv2, OpText, 1), errCode: pe}}},
		{name: "RSV3 binary", steps: []step{{h: fr(true, Rsv3, OpBinary, 1), errCode: pe}}},
		{name: "RSV2 with AllowRsv1", allowRsv1: true, steps: []step{{h: fr(true, Rsv2, OpText, 1), errCode: pe}}},
		{name: "RSV3 with AllowRsv1", allowRsv1: true, steps: []step{{h: fr(true, Rsv3, OpBinary, 1), errCode: pe}}},
		{name: "RSV1|RSV2 with AllowRsv1", allowRsv1: true, steps: []step{{h: fr(true, Rsv1|Rsv2, OpText, 1), errCode: pe}}},
		{name: "RSV1 text with AllowRsv1", allowRsv1: true, steps: []step{{h: fr(true, Rsv1, OpText, 1), op: OpText}}},
		{name: "RSV1 binary first fragment with AllowRsv1", allowRsv1: true, steps: []step{
			{h: fr(false, Rsv1, OpBinary, 1), op: OpBinary, inMsg: true},
			{h: fr(true, 0, OpContinuation, 1), op: OpBinary},
		}},
		{name: "RSV1 on continuation with AllowRsv1", allowRsv1: true, steps: []step{
			{h: fr(false, Rsv1, OpText, 1), op: OpText, inMsg: true},
			{h: fr(true, Rsv1, OpContinuation, 1), errCode: pe},
		}},
		{name: "RSV1 on continuation without extension", steps: []step{
			{h: fr(false, 0, OpText, 1), op: OpText, inMsg: true},
			{h: fr(true, Rsv1, OpContinuation, 1), errCode: pe},
		}},
		{name: "RSV1 on ping with AllowRsv1", allowRsv1: true, steps: []step{{h: fr(true, Rsv1, OpPing, 0), errCode: pe}}},
		{name: "RSV1 on close with AllowRsv1", allowRsv1: true, steps: []step{{h: fr(true, Rsv1, OpClose, 0), errCode: pe}}},
		{name: "RSV1 on ping without extension", steps: []step{{h: fr(true, Rsv1, OpPing, 0), errCode: pe}}},
		{name: "continuation without start", steps: []step{{h: fr(true, 0, OpContinuation, 1), errCode: pe}}},
		{name: "unfinished continuation without start", steps: []step{{h: fr(false, 0, OpContinuation, 1), errCode: pe}}},
		{name: "continuation after a complete message", steps: []step{
			{h: fr(true, 0, OpText, 1), op: OpText},
			{h: fr(true, 0, OpContinuation, 1), errCode: pe},
		}},
		{name: "continuation after a complete fragmented message", steps: []step{
			{h: fr(false, 0, OpText, 1), op: OpText, inMsg: true},
			{h: fr(true, 0, OpContinuation, 1), op: OpText},
			{h: fr(true, 0, OpContinuation, 1), errCode: pe},
		}},
		{name: "text inside fragmented text", steps: []step{
			{h: fr(false, 0, OpText, 1), op: OpText, inMsg: true},
			{h: fr(true, 0, OpText, 1), errCode: pe},
		}},
		{name: "binary inside fragmented text", steps: []step{
			{h: fr(false, 0, OpText, 1), op: OpText, inMsg: true},
			{h: fr(false, 0, OpBinary, 1), errCode: pe},
		}},
		{name: "text inside fragmented binary after a continuation", steps: []step{
			{h: fr(false, 0, OpBinary, 1), op: OpBinary, inMsg: true},
			{h: fr(false, 0, OpContinuation, 1), op: OpBinary, inMsg: true},
			{h: fr(true, 0, OpText, 1), errCode: pe},
		}},
		{name: "control frames between fragments", steps: []step{
			{h: fr(false, 0, OpText, 3), op: OpText, inMsg: true},
			{h: fr(true, 0, OpPing, 4), op: OpPing, inMsg: true},
			{h: fr(true, 0, OpPong, 0), op: OpPong, inMsg: true},
			{h: fr(false, 0, OpContinuation, 3), op: OpText, inMsg: true},
			{h: fr(true, 0, OpClose, 2), op: OpClose, inMsg: true},
			{h: fr(true, 0, OpContinuation, 0), op: OpText},
		}},
		{name: "bad control frame between fragments", steps: []step{
			{h: fr(false, 0, OpText, 3), op: OpText, inMsg: true},
			{h: fr(false, 0, OpPing, 4), errCode: pe},
		}},
		{name: "continuation reports the message opcode", steps: []step{
			{h: fr(false, 0, OpBinary, 10), op: OpBinary, inMsg: true},
			{h: fr(false, 0, OpContinuation, 10), op: OpBinary, inMsg: true},
			{h: fr(true, 0, OpContinuation, 10), op: OpBinary},
			{h: fr(false, 0, OpText, 1), op: OpText, inMsg: true},
			{h: fr(true, 0, OpContinuation, 1), op: OpText},
			{h: fr(true, 0, OpBinary, 1), op: OpBinary},
		}},
		{name: "empty fragments", steps: []step{
			{h: fr(false, 0, OpText, 0), op: OpText, inMsg: true},
			{h: fr(false, 0, OpContinuation, 0), op: OpText, inMsg: true},
			{h: fr(true, 0, OpContinuation, 0), op: OpText},
		}},
	}
	for op := Opcode(3); op <= 7; op++ {
		cases = append(cases, tc{name: "reserved data opcode " + op.String(),
			steps: []step{{h: fr(true, 0, op, 0), errCode: pe}}})
	}
	for op := Opcode(0xB); op <= 0xF; op++ {
		cases = append(cases, tc{name: "reserved control opcode " + op.String(),
			steps: []step{{h: fr(true, 0, op, 0), errCode: pe}}})
	}
	cases = append(cases, tc{name: "reserved opcode inside a fragmented message", steps: []step{
		{h: fr(false, 0, OpText, 1), op: OpText, inMsg: true},
		{h: fr(true, 0, 0x3, 1), errCode: pe},
	}})
	for _, role := range []Role{Server, Client} {
		for _, c := range cases {
			t.Run(role.String()+"/"+c.name, func(t *testing.T) {
				r := &Reader{Role: role, AllowRsv1: c.allowRsv1}
				runSteps(t, r, c.steps)
			})
		}
	}
}

func TestReaderMasking(t *testing.T) {
	for _, tc := range []struct {
		role   Role
		masked bool
		ok     bool
	}{
		{Server, true, true},
		{Server, false, false}, // unmasked frame from a client
		{Client, false, true},
		{Client, true, false}, // masked frame from a server
	} {
		for _, op := range []Opcode{OpText, OpBinary, OpClose, OpPing, OpPong} {
			r := Reader{Role: tc.role}
			op2, err := r.Next(Header{Fin: true, Opcode: op, Masked: tc.masked})
			if tc.ok {
				if err != nil || op2 != op {
					t.Errorf("%v, masked=%t, %v: Next = %v, %v; want %v, nil", tc.role, tc.masked, op, op2, err, op)
				}
				continue
			}
			wantProtocolError(t, err, CloseProtocolError)
		}
	}
	// A bad mask bit on a continuation is caught too, and does not end the
	// message in progress.
	r := Reader{Role: Server}
	if _, err := r.Next(Header{Opcode: OpText, Masked: true}); err != nil {
		t.Fatal(err)
	}
	_, err := r.Next(Header{Fin: true, Opcode: OpContinuation})
	wantProtocolError(t, err, CloseProtocolError)
	if !r.InMessage() {
		t.Error("a rejected continuation ended the message")
	}
}

func TestReaderZeroValueIsServer(t *testing.T) {
	var r Reader
	if r.Role != Server || r.AllowRsv1 || r.InMessage() {
		t.Fatalf("zero Reader = %+v", r)
	}
	_, err := r.Next(Header{Fin: true, Opcode: OpText})
	wantProtocolError(t, err, CloseProtocolError)
}

func TestRoleString(t *testing.T) {
	if Server.String() != "server" || Client.String() != "client" {
		t.Errorf("Role strings: %q, %q", Server.String(), Client.String())
	}
}
