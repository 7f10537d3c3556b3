package wire

// Role says which end of the connection is reading: servers receive masked
// frames, clients unmasked ones (RFC 6455 section 5.1).
type Role uint8

// Roles.
const (
	Server Role = iota
	Client
)

func (r Role) String() string {
	if r == Client {
		return "client"
	}
	return "server"
}

// Reader tracks the state of the incoming frame stream and applies the
// rules of RFC 6455 sections 5.2-5.5 to each header: masking by role, RSV
// bits, reserved opcodes, control-frame limits and fragmentation. Its zero
// value is a server-side reader with no extension.
type Reader struct {
	Role Role
	// AllowRsv1 is set when an extension that uses RSV1 (permessage-deflate)
	// was negotiated; RSV1 is then allowed on the first frame of a message.
	AllowRsv1 bool

	inMessage bool
	opcode    Opcode
}

// InMessage reports whether a fragmented message is in progress.
func (r *Reader) InMessage() bool { return r.inMessage }

// Next checks the header of the next frame. For a data frame it returns the
// opcode of the message the frame belongs to, so continuation frames report
// the opcode of their first frame.
func (r *Reader) Next(h Header) (Opcode, error) {
	if h.Opcode.IsReserved() {
		return 0, Errorf(CloseProtocolError, "reserved opcode %#x", uint8(h.Opcode))
	}
	if r.Role == Server && !h.Masked {
		return 0, Errorf(CloseProtocolError, "unmasked frame from client")
	}
	if r.Role == Client && h.Masked {
		return 0, Errorf(CloseProtocolError, "masked frame from server")
	}
	if h.Rsv&(Rsv2|Rsv3) != 0 {
		return 0, Errorf(CloseProtocolError, "reserved bits set without an extension")
	}
	if h.Opcode.IsControl() {
		switch {
		case h.Rsv != 0:
			return 0, Errorf(CloseProtocolError, "reserved bits set on a control frame")
		case !h.Fin:
			return 0, Errorf(CloseProtocolError, "fragmented control frame")
		case h.Length > MaxControlPayload:
			return 0, Errorf(CloseProtocolError, "control frame of %d bytes", h.Length)
		}
		return h.Opcode, nil
	}
	if h.Opcode == OpContinuation {
		if !r.inMessage {
			return 0, Errorf(CloseProtocolError, "continuation frame without a message")
		}
		if h.Rsv != 0 {
			return 0, Errorf(CloseProtocolError, "reserved bits set on a continuation frame")
		}
		r.inMessage = !h.Fin
		return r.opcode, nil
	}
	if r.inMessage {
		return 0, Errorf(CloseProtocolError, "new message inside a fragmented message")
	}
	if h.Rsv&Rsv1 != 0 && !r.AllowRsv1 {
		return 0, Errorf(CloseProtocolError, "reserved bits set without an extension")
	}
	r.inMessage = !h.Fin
	r.opcode = h.Opcode
	return h.Opcode, nil
}
