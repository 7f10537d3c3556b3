package diagnose

import (
	"bytes"
	"encoding/xml"
	"flag"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/diagnose-example.svg")

// exampleSVG is the timeline the docs and the README show: the mixed log,
// Tether and python-websockets in one file, one peer that stops answering.
const exampleSVG = "../docs/diagnose-example.svg"

func TestSVGTimeline(t *testing.T) {
	rep := analyzeFile(t, "mixed.log")
	var buf bytes.Buffer
	if err := rep.WriteSVG(&buf); err != nil {
		t.Fatal(err)
	}
	svg := buf.Bytes()
	checkXML(t, svg)
	text := string(svg)
	for _, s := range rep.Streams {
		name := s.Name
		if len(name) > 36 {
			name = name[:35]
		}
		if !strings.Contains(text, ">"+name) {
			t.Errorf("no lane for %s", s.Name)
		}
	}
	if !strings.Contains(text, troubleColor) {
		t.Error("the timeout is not drawn in red")
	}
	if *update {
		if err := os.WriteFile(exampleSVG, svg, 0o644); err != nil {
			t.Fatal(err)
		}
	} else if want, err := os.ReadFile(exampleSVG); err != nil || !bytes.Equal(want, svg) {
		t.Errorf("%s is not the timeline of testdata/mixed.log (%v): go test ./diagnose/ -run TestSVGTimeline -update", exampleSVG, err)
	}
	renderPNG(t, svg)
}

func TestSVGWithoutTimestamps(t *testing.T) {
	rep := analyzeFile(t, "report-notime.log")
	var buf bytes.Buffer
	if err := rep.WriteSVG(&buf); err != nil {
		t.Fatal(err)
	}
	checkXML(t, buf.Bytes())
	if !strings.Contains(buf.String(), "no timestamps") {
		t.Error("the axis does not say it counts lines")
	}
}

func TestSVGEmpty(t *testing.T) {
	rep, _ := Analyze(strings.NewReader("nothing to see\n"))
	var buf bytes.Buffer
	if err := rep.WriteSVG(&buf); err != nil {
		t.Fatal(err)
	}
	checkXML(t, buf.Bytes())
}

func checkXML(t *testing.T, b []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		_, err := d.Token()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed: %v", err)
		}
	}
}

// renderPNG renders the SVG with librsvg's rsvg-convert (Debian's
// librsvg2-bin) and checks the picture; set DIAGNOSE_PNG to keep it for a
// look. Without the tool the test is skipped, except in CI.
func renderPNG(t *testing.T, svg []byte) {
	tool, err := exec.LookPath("rsvg-convert")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("rsvg-convert missing: apt-get install librsvg2-bin")
		}
		t.Skip("rsvg-convert missing (apt-get install librsvg2-bin)")
	}
	out := filepath.Join(t.TempDir(), "timeline.png")
	if keep := os.Getenv("DIAGNOSE_PNG"); keep != "" {
		out = keep
	}
	cmd := exec.Command(tool, "-o", out)
	cmd.Stdin = bytes.NewReader(svg)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rsvg-convert: %v\n%s", err, msg)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != svgWidth || b.Dy() < svgTop+svgLaneH {
		t.Fatalf("PNG is %v", b)
	}
}
