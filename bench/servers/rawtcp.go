package servers

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
)

// rawtcp is the limit: a goroutine per connection that answers the opening
// handshake and then echoes each frame (unmasked, as a server must) with
// one read buffer and one write per frame, nothing else: no message
// assembly, no UTF-8 check, no keepalive, no registry. It serves /echo only.
func init() { register("rawtcp", func(Options) (Server, error) { return rawTCP{}, nil }) }

type rawTCP struct{}

func (rawTCP) Serve(ln net.Listener) error {
	for {
		nc, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			Conns.Add(1)
			defer Conns.Add(-1)
			defer nc.Close()
			br := bufio.NewReaderSize(nc, 4096)
			if rawHandshake(nc, br) != nil {
				return
			}
			rawEcho(nc, br)
		}()
	}
}

func rawHandshake(nc net.Conn, br *bufio.Reader) error {
	req, err := http.ReadRequest(br)
	if err != nil {
		return err
	}
	key := req.Header.Get("Sec-WebSocket-Key")
	if key == "" {
		io.WriteString(nc, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
		return errors.New("not a WebSocket handshake")
	}
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	_, err = io.WriteString(nc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Accept: "+base64.StdEncoding.EncodeToString(h[:])+"\r\n\r\n")
	return err
}

// rawEcho reads frames and writes each back unmasked; a close frame is
// answered and ends the connection, a ping gets its pong.
func rawEcho(nc net.Conn, br *bufio.Reader) {
	var (
		hdr [14]byte
		buf []byte
	)
	for {
		if _, err := io.ReadFull(br, hdr[:2]); err != nil {
			return
		}
		n := uint64(hdr[1] & 0x7f)
		ext := 0
		switch n {
		case 126:
			ext = 2
		case 127:
			ext = 8
		}
		masked := hdr[1]&0x80 != 0
		extra := ext
		if masked {
			extra += 4
		}
		if _, err := io.ReadFull(br, hdr[2:2+extra]); err != nil {
			return
		}
		switch ext {
		case 2:
			n = uint64(binary.BigEndian.Uint16(hdr[2:]))
		case 8:
			n = binary.BigEndian.Uint64(hdr[2:])
		}
		if n > 1<<30 {
			return
		}
		// The reply's header goes right before the payload, in one buffer.
		out := 2 + ext
		if need := out + int(n); cap(buf) < need {
			buf = make([]byte, need)
		}
		buf = buf[:out+int(n)]
		if _, err := io.ReadFull(br, buf[out:]); err != nil {
			return
		}
		if masked {
			rawMask(hdr[2+ext:6+ext], buf[out:])
		}
		op := hdr[0] & 0x0f
		if op == 0x9 {
			op = 0xA
		}
		buf[0] = hdr[0]&0xf0 | op
		buf[1] = hdr[1] & 0x7f
		copy(buf[2:out], hdr[2:2+ext])
		if _, err := nc.Write(buf); err != nil || op == 0x8 {
			return
		}
	}
}

func rawMask(key []byte, b []byte) {
	k := uint64(binary.LittleEndian.Uint32(key))
	k |= k << 32
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], binary.LittleEndian.Uint64(b[i:])^k)
	}
	for ; i < len(b); i++ {
		b[i] ^= key[i&3]
	}
}
