package wire

import "testing"

func TestParseDeflateOffers(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   DeflateParams
		bad    bool
	}{
		{"permessage-deflate", DeflateParams{}, false},
		{"permessage-deflate; client_max_window_bits", DeflateParams{ClientMaxWindowBits: -1}, false},
		{"permessage-deflate; client_max_window_bits=10; server_max_window_bits=12", DeflateParams{ClientMaxWindowBits: 10, ServerMaxWindowBits: 12}, false},
		{`permessage-deflate; server_max_window_bits="9"`, DeflateParams{ServerMaxWindowBits: 9}, false},
		{"permessage-deflate; server_no_context_takeover; client_no_context_takeover", DeflateParams{ServerNoContextTakeover: true, ClientNoContextTakeover: true}, false},
		{"permessage-deflate; server_max_window_bits", DeflateParams{}, true},
		{"permessage-deflate; server_max_window_bits=7", DeflateParams{}, true},
		{"permessage-deflate; server_max_window_bits=16", DeflateParams{}, true},
		{"permessage-deflate; server_max_window_bits=010", DeflateParams{}, true},
		{"permessage-deflate; client_max_window_bits=8; client_max_window_bits=9", DeflateParams{}, true},
		{"permessage-deflate; server_no_context_takeover=1", DeflateParams{}, true},
		{"permessage-deflate; mystery", DeflateParams{}, true},
	} {
		exts, err := ParseExtensions([]string{tc.header})
		if err != nil || len(exts) != 1 {
			t.Fatalf("%q: %v %v", tc.header, exts, err)
		}
		got, err := ParseDeflate(exts[0], false)
		if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
			t.Errorf("%q: got %+v, %v; want %+v, bad=%v", tc.header, got, err, tc.want, tc.bad)
		}
	}
}

func TestNegotiateDeflate(t *testing.T) {
	for _, tc := range []struct {
		offer string
		cfg   DeflateConfig
		want  string // "" when declined
	}{
		{"permessage-deflate", DeflateConfig{MaxWindowBits: 15}, "permessage-deflate"},
		{"permessage-deflate; client_max_window_bits", DeflateConfig{MaxWindowBits: 15}, "permessage-deflate"},
		{"permessage-deflate; client_max_window_bits", DeflateConfig{MaxWindowBits: 10}, "permessage-deflate; server_max_window_bits=10; client_max_window_bits=10"},
		{"permessage-deflate", DeflateConfig{MaxWindowBits: 10}, "permessage-deflate; server_max_window_bits=10"},
		{"permessage-deflate; server_max_window_bits=9; client_max_window_bits=12", DeflateConfig{MaxWindowBits: 11},
			"permessage-deflate; server_max_window_bits=9; client_max_window_bits=11"},
		{"permessage-deflate; server_no_context_takeover", DeflateConfig{MaxWindowBits: 15}, "permessage-deflate; server_no_context_takeover"},
		{"permessage-deflate", DeflateConfig{NoContextTakeover: true, MaxWindowBits: 15},
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
		// A malformed first offer is declined; the next one is taken.
		{"permessage-deflate; server_max_window_bits=20, permessage-deflate; client_max_window_bits", DeflateConfig{MaxWindowBits: 15}, "permessage-deflate"},
		{"x-webkit-deflate-frame", DeflateConfig{MaxWindowBits: 15}, ""},
	} {
		exts, err := ParseExtensions([]string{tc.offer})
		if err != nil {
			t.Fatal(err)
		}
		resp, ok := NegotiateDeflate(exts, tc.cfg)
		got := ""
		if ok {
			got = resp.String()
		}
		if got != tc.want {
			t.Errorf("offer %q cfg %+v: got %q, want %q", tc.offer, tc.cfg, got, tc.want)
		}
		if ok { // the client must accept what the server answered
			var offer DeflateParams
			for _, e := range exts {
				if p, err := ParseDeflate(e, false); err == nil {
					offer = p
					break
				}
			}
			re, _ := ParseExtensions([]string{got})
			if _, err := CheckDeflateResponse(re[0], offer); err != nil {
				t.Errorf("offer %q: client rejects the server's own answer %q: %v", tc.offer, got, err)
			}
		}
	}
}

func TestCheckDeflateResponse(t *testing.T) {
	offer := DeflateOffer(DeflateConfig{MaxWindowBits: 12, NoContextTakeover: true})
	if got := offer.String(); got != "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=12" {
		t.Fatalf("offer %q", got)
	}
	for _, tc := range []struct {
		resp string
		ok   bool
	}{
		{"permessage-deflate; server_no_context_takeover; server_max_window_bits=12", true},
		{"permessage-deflate; server_no_context_takeover; server_max_window_bits=9; client_max_window_bits=10", true},
		{"permessage-deflate; server_max_window_bits=12", false},                                                     // takeover refused
		{"permessage-deflate; server_no_context_takeover", false},                                                    // window not honoured
		{"permessage-deflate; server_no_context_takeover; server_max_window_bits=13", false},                         // above the offer
		{"permessage-deflate; server_no_context_takeover; server_max_window_bits=12; client_max_window_bits", false}, // no value
		{"permessage-deflate; server_no_context_takeover; server_max_window_bits=12; client_max_window_bits=14", false},
	} {
		exts, err := ParseExtensions([]string{tc.resp})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := CheckDeflateResponse(exts[0], offer); (err == nil) != tc.ok {
			t.Errorf("%q: err=%v, want ok=%v", tc.resp, err, tc.ok)
		}
	}
	bare := DeflateOffer(DeflateConfig{MaxWindowBits: 15})
	exts, _ := ParseExtensions([]string{"permessage-deflate; client_max_window_bits=9"})
	if _, err := CheckDeflateResponse(exts[0], bare); err != nil {
		t.Errorf("bare client_max_window_bits lets the server pick a value: %v", err)
	}
}

// FuzzParseExtensions: any header parses or fails cleanly; an accepted
// permessage-deflate offer yields a response the client side accepts.
func FuzzParseExtensions(f *testing.F) {
	for _, s := range []string{
		"permessage-deflate",
		"permessage-deflate; client_max_window_bits",
		"permessage-deflate; server_max_window_bits=10; client_max_window_bits=9, permessage-deflate",
		`permessage-deflate; server_max_window_bits="12"; server_no_context_takeover`,
		"permessage-deflate; client_max_window_bits=8; client_max_window_bits=9",
		"x-webkit-deflate-frame; no_context_takeover",
		"permessage-deflate;;", ",,", "a=b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		exts, err := ParseExtensions([]string{header})
		if err != nil {
			return
		}
		resp, ok := NegotiateDeflate(exts, DeflateConfig{MaxWindowBits: 12})
		if !ok {
			return
		}
		var offer DeflateParams
		for _, e := range exts {
			if p, err := ParseDeflate(e, false); err == nil && e.Name == DeflateName {
				offer = p
				break
			}
		}
		re, err := ParseExtensions([]string{resp.String()})
		if err != nil || len(re) != 1 {
			t.Fatalf("response %q does not parse: %v", resp.String(), err)
		}
		if _, err := CheckDeflateResponse(re[0], offer); err != nil {
			t.Fatalf("offer %q: client rejects the response %q: %v", header, resp.String(), err)
		}
	})
}
