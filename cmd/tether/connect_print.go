package main

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/tetherws/tether"
)

// printers print one received message each, by --output.
var printers = map[string]func(w *bufio.Writer, typ tether.MessageType, p []byte){
	"text": func(w *bufio.Writer, typ tether.MessageType, p []byte) {
		if typ == tether.Binary {
			w.WriteString(hex.EncodeToString(p))
		} else {
			w.Write(p)
		}
		w.WriteByte('\n')
	},
	"hex": func(w *bufio.Writer, _ tether.MessageType, p []byte) {
		w.WriteString(hex.EncodeToString(p))
		w.WriteByte('\n')
	},
	"base64": func(w *bufio.Writer, _ tether.MessageType, p []byte) {
		w.WriteString(base64.StdEncoding.EncodeToString(p))
		w.WriteByte('\n')
	},
	"jsonl": func(w *bufio.Writer, typ tether.MessageType, p []byte) {
		b, _ := json.Marshal(jsonMessage(typ, p))
		w.Write(b)
		w.WriteByte('\n')
	},
	"raw": func(w *bufio.Writer, _ tether.MessageType, p []byte) { w.Write(p) },
}

// jsonLine is one message as --output jsonl prints it and --jsonl-input
// reads it: a text message's data is its text (JSON escapes keep newlines
// inside the line), a binary one's is base64, so any content survives.
type jsonLine struct {
	Type string `json:"type"`
	Data string `json:"data"`
}

func jsonMessage(typ tether.MessageType, p []byte) jsonLine {
	if typ == tether.Binary {
		return jsonLine{Type: "binary", Data: base64.StdEncoding.EncodeToString(p)}
	}
	return jsonLine{Type: "text", Data: string(p)}
}

// parseJSONLine reads one --jsonl-input line.
func parseJSONLine(line []byte) (tether.MessageType, []byte, error) {
	var m jsonLine
	if err := json.Unmarshal(line, &m); err != nil {
		return 0, nil, fmt.Errorf("not a JSON message line: %w", err)
	}
	switch m.Type {
	case "text", "":
		return tether.Text, []byte(m.Data), nil
	case "binary":
		p, err := base64.StdEncoding.DecodeString(m.Data)
		if err != nil {
			return 0, nil, fmt.Errorf("binary data is not base64: %w", err)
		}
		return tether.Binary, p, nil
	}
	return 0, nil, fmt.Errorf("type %q: want text or binary", m.Type)
}
