package diagnose

import "unicode/utf8"

// ShortID is the short form of a connection ID that Tether's tools show: its
// last 8 characters, when the ID is longer than 12. Tether's IDs are UUIDv7,
// whose first 12 hex digits are the opening millisecond, so connections
// opened in one minute share their first 8 characters; the last 8 are
// random. The dashboard shortens the same way (dashboard/assets/app.js,
// shortID), so a short ID read in one tool can be found in the other, and
// grep finds it in the log, where it is the tail of the full ID.
func ShortID(id string) string {
	if utf8.RuneCountInString(id) <= 12 {
		return id
	}
	r := []rune(id)
	return string(r[len(r)-8:])
}
