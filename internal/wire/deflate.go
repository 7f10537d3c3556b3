package wire

import (
	"fmt"
	"strconv"
	"strings"
)

// Extension is one element of a Sec-WebSocket-Extensions header: a name and
// its parameters, in order (RFC 6455 section 9.1).
type Extension struct {
	Name   string
	Params []Param
}

// Param is an extension parameter; Value is "" when HasValue is false.
type Param struct {
	Name     string
	Value    string
	HasValue bool
}

// ParseExtensions parses Sec-WebSocket-Extensions header values. Quoted
// values are unquoted. A malformed element is an error.
func ParseExtensions(values []string) ([]Extension, error) {
	var out []Extension
	for _, v := range values {
		for elem := range strings.SplitSeq(v, ",") {
			if strings.TrimSpace(elem) == "" {
				continue
			}
			parts := strings.Split(elem, ";")
			ext := Extension{Name: strings.TrimSpace(parts[0])}
			if !isToken(ext.Name) {
				return nil, fmt.Errorf("bad extension name %q", ext.Name)
			}
			for _, p := range parts[1:] {
				name, value, has := strings.Cut(p, "=")
				name, value = strings.TrimSpace(name), strings.TrimSpace(value)
				if has && len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
					value = value[1 : len(value)-1]
				}
				if !isToken(name) || (has && !isToken(value)) {
					return nil, fmt.Errorf("bad parameter %q in extension %s", strings.TrimSpace(p), ext.Name)
				}
				ext.Params = append(ext.Params, Param{Name: name, Value: value, HasValue: has})
			}
			out = append(out, ext)
		}
	}
	return out, nil
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}

// DeflateName is the extension token of RFC 7692.
const DeflateName = "permessage-deflate"

// DeflateParams are the parameters of a permessage-deflate offer or response
// (RFC 7692 section 7.1). A window-bits field is 0 when absent; in an offer,
// ClientMaxWindowBits is -1 for the bare parameter (no value).
type DeflateParams struct {
	ServerNoContextTakeover bool
	ClientNoContextTakeover bool
	ServerMaxWindowBits     int
	ClientMaxWindowBits     int
}

// ParseDeflate validates a permessage-deflate element. Unknown or duplicate
// parameters, values outside 8-15, and values where none belongs are
// errors; a response (response=true) must give client_max_window_bits a value.
func ParseDeflate(ext Extension, response bool) (DeflateParams, error) {
	var p DeflateParams
	seen := map[string]bool{}
	for _, prm := range ext.Params {
		if seen[prm.Name] {
			return p, fmt.Errorf("duplicate parameter %s", prm.Name)
		}
		seen[prm.Name] = true
		switch prm.Name {
		case "server_no_context_takeover", "client_no_context_takeover":
			if prm.HasValue {
				return p, fmt.Errorf("%s takes no value", prm.Name)
			}
			if prm.Name == "server_no_context_takeover" {
				p.ServerNoContextTakeover = true
			} else {
				p.ClientNoContextTakeover = true
			}
		case "server_max_window_bits":
			bits, err := windowBits(prm)
			if err != nil {
				return p, err
			}
			p.ServerMaxWindowBits = bits
		case "client_max_window_bits":
			if !prm.HasValue {
				if response {
					return p, fmt.Errorf("client_max_window_bits needs a value in a response")
				}
				p.ClientMaxWindowBits = -1
				continue
			}
			bits, err := windowBits(prm)
			if err != nil {
				return p, err
			}
			p.ClientMaxWindowBits = bits
		default:
			return p, fmt.Errorf("unknown parameter %s", prm.Name)
		}
	}
	return p, nil
}

func windowBits(prm Param) (int, error) {
	if !prm.HasValue {
		return 0, fmt.Errorf("%s needs a value", prm.Name)
	}
	if len(prm.Value) == 0 || len(prm.Value) > 2 || prm.Value[0] == '0' {
		return 0, fmt.Errorf("%s=%s: want 8-15", prm.Name, prm.Value)
	}
	n, err := strconv.Atoi(prm.Value)
	if err != nil || n < 8 || n > 15 {
		return 0, fmt.Errorf("%s=%s: want 8-15", prm.Name, prm.Value)
	}
	return n, nil
}

// String formats p as a Sec-WebSocket-Extensions element.
func (p DeflateParams) String() string {
	var b strings.Builder
	b.WriteString(DeflateName)
	if p.ServerNoContextTakeover {
		b.WriteString("; server_no_context_takeover")
	}
	if p.ClientNoContextTakeover {
		b.WriteString("; client_no_context_takeover")
	}
	if p.ServerMaxWindowBits > 0 {
		b.WriteString("; server_max_window_bits=" + strconv.Itoa(p.ServerMaxWindowBits))
	}
	switch {
	case p.ClientMaxWindowBits > 0:
		b.WriteString("; client_max_window_bits=" + strconv.Itoa(p.ClientMaxWindowBits))
	case p.ClientMaxWindowBits < 0:
		b.WriteString("; client_max_window_bits")
	}
	return b.String()
}

// DeflateConfig is what one end is willing to do.
type DeflateConfig struct {
	NoContextTakeover bool // ask for and use no context takeover in both directions
	MaxWindowBits     int  // 8-15: the largest window either side may use, where it can be limited
}

// NegotiateDeflate is the server's side: it accepts the first
// permessage-deflate offer it can, in the client's order, and returns the
// response parameters. Malformed offers are declined, not fatal.
func NegotiateDeflate(offers []Extension, cfg DeflateConfig) (DeflateParams, bool) {
	maxBits := cfg.MaxWindowBits
	if maxBits < 8 || maxBits > 15 {
		maxBits = 15
	}
	for _, ext := range offers {
		if ext.Name != DeflateName {
			continue
		}
		offer, err := ParseDeflate(ext, false)
		if err != nil {
			continue
		}
		resp := DeflateParams{
			ServerNoContextTakeover: offer.ServerNoContextTakeover || cfg.NoContextTakeover,
			ClientNoContextTakeover: offer.ClientNoContextTakeover || cfg.NoContextTakeover,
		}
		sbits := maxBits
		if offer.ServerMaxWindowBits > 0 {
			sbits = min(sbits, offer.ServerMaxWindowBits)
		}
		if sbits < 15 || offer.ServerMaxWindowBits > 0 {
			resp.ServerMaxWindowBits = sbits
		}
		if offer.ClientMaxWindowBits != 0 { // the client lets us limit its window
			cbits := maxBits
			if offer.ClientMaxWindowBits > 0 {
				cbits = min(cbits, offer.ClientMaxWindowBits)
			}
			if cbits < 15 || offer.ClientMaxWindowBits > 0 {
				resp.ClientMaxWindowBits = cbits
			}
		}
		return resp, true
	}
	return DeflateParams{}, false
}

// DeflateOffer is the client's offer for cfg.
func DeflateOffer(cfg DeflateConfig) DeflateParams {
	p := DeflateParams{ClientMaxWindowBits: -1}
	if cfg.MaxWindowBits >= 8 && cfg.MaxWindowBits < 15 {
		p.ClientMaxWindowBits = cfg.MaxWindowBits
		p.ServerMaxWindowBits = cfg.MaxWindowBits
	}
	if cfg.NoContextTakeover {
		p.ServerNoContextTakeover = true
		p.ClientNoContextTakeover = true
	}
	return p
}

// CheckDeflateResponse is the client's side: it validates the server's
// response to offer (RFC 7692 section 7.1) and returns it.
func CheckDeflateResponse(ext Extension, offer DeflateParams) (DeflateParams, error) {
	resp, err := ParseDeflate(ext, true)
	if err != nil {
		return resp, err
	}
	if resp.ClientMaxWindowBits > 0 && offer.ClientMaxWindowBits == 0 {
		return resp, fmt.Errorf("client_max_window_bits in response but not offered")
	}
	if offer.ClientMaxWindowBits > 0 && resp.ClientMaxWindowBits > offer.ClientMaxWindowBits {
		return resp, fmt.Errorf("client_max_window_bits=%d above the offered %d", resp.ClientMaxWindowBits, offer.ClientMaxWindowBits)
	}
	if offer.ServerMaxWindowBits > 0 && (resp.ServerMaxWindowBits == 0 || resp.ServerMaxWindowBits > offer.ServerMaxWindowBits) {
		return resp, fmt.Errorf("server_max_window_bits=%d does not honour the offered %d", resp.ServerMaxWindowBits, offer.ServerMaxWindowBits)
	}
	if offer.ServerNoContextTakeover && !resp.ServerNoContextTakeover {
		return resp, fmt.Errorf("server_no_context_takeover offered but not accepted")
	}
	return resp, nil
}
