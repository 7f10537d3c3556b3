package tether

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// TestDocLinks: every relative reference in the repository's Markdown
// resolves inside the repository: links and images to files that exist,
// #anchors to headings that exist, and paths quoted in code spans (`../x`,
// `docs/x.md`) too. A clone has nothing outside it, so a doc that points
// there (the contracts once pointed at ../shared/DESIGN.md) is a dead end
// for every reader.
func TestDocLinks(t *testing.T) {
	root, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	docs := markdownFiles(t, root)
	if len(docs) < 5 {
		t.Fatalf("found %d Markdown files, want the README and docs/", len(docs))
	}
	for _, doc := range docs {
		text, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, doc)
		for _, ref := range docRefs(string(text)) {
			if msg := checkRef(root, doc, ref); msg != "" {
				t.Errorf("%s: %s: %s", rel, ref.target, msg)
			}
		}
	}
}

// markdownFiles lists the *.md files of the repository, leaving out
// installed packages and test fixtures.
func markdownFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "node_modules", ".git", "testdata", "bin", ".cache":
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".md") {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type docRef struct {
	target string
	code   bool // quoted in a code span: a path, not a link
}

var (
	mdLink   = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	htmlSrc  = regexp.MustCompile(`(?:src|href)="([^"]+)"`)
	codeSpan = regexp.MustCompile("`([^`\\s]+)`")
	// pathLike is a code span that names a file of the repository by a
	// relative path: one going up, or a Markdown file in a folder.
	pathLike = regexp.MustCompile(`^(\.\./|\./)|^[\w.-]+(/[\w.-]+)*/[\w.-]+\.md(#.*)?$`)
)

// docRefs returns the relative references of a Markdown text. Fenced code
// blocks are commands and code, not references, and are skipped.
func docRefs(text string) []docRef {
	var refs []docRef
	fenced := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
			refs = append(refs, docRef{target: m[1]})
		}
		for _, m := range htmlSrc.FindAllStringSubmatch(line, -1) {
			refs = append(refs, docRef{target: m[1]})
		}
		for _, m := range codeSpan.FindAllStringSubmatch(line, -1) {
			if pathLike.MatchString(m[1]) {
				refs = append(refs, docRef{target: m[1], code: true})
			}
		}
	}
	var out []docRef
	for _, r := range refs {
		if !strings.Contains(r.target, "://") && !strings.HasPrefix(r.target, "mailto:") {
			out = append(out, r)
		}
	}
	return out
}

// checkRef says what is wrong with ref, found in doc, or "".
func checkRef(root, doc string, ref docRef) string {
	path, anchor, _ := strings.Cut(ref.target, "#")
	file := doc
	if path != "" {
		file = filepath.Join(filepath.Dir(doc), filepath.FromSlash(path))
		if ref.code && !strings.HasPrefix(path, ".") {
			// A path in a code span may be written from the repository's
			// root, as commands are: accept either reading.
			if _, err := os.Stat(file); err != nil {
				file = filepath.Join(root, filepath.FromSlash(path))
			}
		}
	}
	if rel, err := filepath.Rel(root, file); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "points outside the repository"
	}
	if _, err := os.Stat(file); err != nil {
		return "no such file in the repository"
	}
	if anchor != "" && strings.HasSuffix(file, ".md") {
		text, err := os.ReadFile(file)
		if err != nil {
			return err.Error()
		}
		if !headingAnchors(string(text))[anchor] {
			return "no heading with this anchor"
		}
	}
	return ""
}

// headingAnchors returns the anchors GitHub gives a Markdown text's
// headings: lower case, punctuation dropped, spaces as hyphens, repeats
// numbered.
func headingAnchors(text string) map[string]bool {
	anchors := map[string]bool{}
	seen := map[string]int{}
	fenced := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
		}
		if fenced || !strings.HasPrefix(line, "#") {
			continue
		}
		title := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(title) {
			switch {
			case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteRune('-')
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			anchors[a+"-"+strconv.Itoa(n)] = true
		} else {
			anchors[a] = true
		}
		seen[a]++
	}
	return anchors
}

// TestDocLinksCheck: the checker itself finds what it must.
func TestDocLinksCheck(t *testing.T) {
	root, _ := filepath.Abs(".")
	doc := filepath.Join(root, "docs", "logging.md")
	for _, c := range []struct {
		ref  docRef
		fail bool
	}{
		{docRef{target: "keepalive.md#if-you-stop-reading"}, false},
		{docRef{target: "keepalive.md#no-such-heading"}, true},
		{docRef{target: "../shared/DESIGN.md"}, true},
		{docRef{target: "../../shared/DESIGN.md", code: true}, true},
		{docRef{target: "missing.md"}, true},
		{docRef{target: "docs/logging.md", code: true}, false},
	} {
		if got := checkRef(root, doc, c.ref) != ""; got != c.fail {
			t.Errorf("%+v: failed %v, want %v", c.ref, got, c.fail)
		}
	}
	refs := docRefs("see [a](a.md), `../shared/DESIGN.md`, ![i](i.png) and\n```\n[x](not-a-ref.md)\n```\n")
	if len(refs) != 3 {
		t.Errorf("docRefs found %v, want a.md, ../shared/DESIGN.md and i.png", refs)
	}
}

// TestREADMEPromises: the README opens with the two commands a newcomer
// runs first, and states the go line of go.mod as the Go version users
// need.
func TestREADMEPromises(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	opening := "# Tether\n\n```sh\ngo run ./cmd/tether serve\nmake test\n```\n"
	if !strings.HasPrefix(string(readme), opening) {
		t.Errorf("README.md does not open with:\n%s", opening)
	}
	gomod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go ([0-9.]+)$`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("no go line in go.mod")
	}
	if want := "Go " + string(m[1]) + " or later"; !strings.Contains(string(readme), want) {
		t.Errorf("README.md does not say %q, the go line of go.mod", want)
	}
	if !strings.Contains(string(readme), "go install github.com/tetherws/tether/cmd/tether@latest") {
		t.Error("README.md has no go install line for the CLI")
	}
}
